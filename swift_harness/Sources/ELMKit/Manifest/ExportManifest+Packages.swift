import Foundation

extension ExportManifest {
    /// What elm-run and the app show about the package(s): "X.mlpackage (2.2 MB)", or for a split
    /// export "3 packages: X-1of3.mlpackage (layers 0-1, 0.9 MB), …; 2.7 MB in all".
    public var packagesDescription: String {
        func size(_ bytes: Int?) -> String? {
            guard let bytes else { return nil }
            let megabytes = Double(bytes) / 1_000_000
            return megabytes >= 1000 ? String(format: "%.2f GB", megabytes / 1000) : String(format: "%.1f MB", megabytes)
        }
        guard isSplit else {
            return chunks[0].package + (size(chunks[0].packageBytes).map { " (\($0))" } ?? "")
        }
        let list = chunks.map { chunk in
            let details = [chunk.layersDescription, size(chunk.packageBytes)].compactMap { $0 }.filter { !$0.isEmpty }
            return chunk.package + (details.isEmpty ? "" : " (\(details.joined(separator: ", ")))")
        }
        return "\(chunks.count) packages: " + list.joined(separator: ", ") + (size(packageBytes).map { "; \($0) in all" } ?? "")
    }

    /// The packages named in export.json that are not in `folder`, neither as .mlpackage nor as the
    /// .mlmodelc Xcode compiles it into. Checked before loading, so a split export with a chunk
    /// missing fails at once instead of after compiling the chunks before it.
    public func missingPackages(in folder: URL) -> [String] {
        chunks.map(\.package).filter { name in
            let package = folder.appendingPathComponent(name)
            let compiled = folder.appendingPathComponent(package.deletingPathExtension().lastPathComponent + ".mlmodelc")
            return !FileManager.default.fileExists(atPath: package.path) && !FileManager.default.fileExists(atPath: compiled.path)
        }
    }
}
