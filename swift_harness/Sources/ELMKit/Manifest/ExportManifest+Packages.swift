import Foundation

extension ExportManifest {
    /// What elm-run and the app show about `format`'s package(s): "X.mlpackage (2.2 MB)", or for a
    /// split export "3 packages: X-1of3.mlpackage (layers 0-1, 0.9 MB), …; 2.7 MB in all".
    public func packagesDescription(for format: ExportFormat) -> String {
        func size(_ bytes: Int?) -> String? {
            guard let bytes else { return nil }
            let megabytes = Double(bytes) / 1_000_000
            return megabytes >= 1000 ? String(format: "%.2f GB", megabytes / 1000) : String(format: "%.1f MB", megabytes)
        }
        let formatChunks = chunks(for: format)
        guard let first = formatChunks.first else { return "no \(format.displayName) packages" }
        guard formatChunks.count > 1 else {
            return first.package + (size(first.packageBytes).map { " (\($0))" } ?? "")
        }
        let list = formatChunks.map { chunk in
            let details = [chunk.layersDescription, size(chunk.packageBytes)].compactMap { $0 }.filter { !$0.isEmpty }
            return chunk.package + (details.isEmpty ? "" : " (\(details.joined(separator: ", ")))")
        }
        let total = size(packageBytes(format)).map { "; \($0) in all" } ?? ""
        return "\(formatChunks.count) packages: " + list.joined(separator: ", ") + total
    }

    /// `packagesDescription(for:)` of the primary format (Core ML when the folder holds it).
    public var packagesDescription: String { packagesDescription(for: primaryFormat) }

    /// The packages of `format` named in export.json that are not in `folder`, neither as written
    /// nor compiled (.mlmodelc, which Xcode makes of an .mlpackage; .aimodelc, which
    /// `coreai-build compile` makes of an .aimodel). Checked before loading, so a split export with
    /// a chunk missing fails at once instead of after loading the chunks before it.
    public func missingPackages(in folder: URL, format: ExportFormat = .coreML) -> [String] {
        chunks(for: format).map(\.package).filter { name in
            !FileManager.default.fileExists(atPath: Self.packageURL(name, in: folder, format: format).path)
        }
    }

    /// Where package `name` of `format` is in `folder`: as written, else its compiled form if
    /// that is there (the written URL when neither is).
    public static func packageURL(_ name: String, in folder: URL, format: ExportFormat) -> URL {
        let written = folder.appendingPathComponent(name)
        if FileManager.default.fileExists(atPath: written.path) { return written }
        let compiledExtension = format == .coreML ? "mlmodelc" : "aimodelc"
        let compiled = folder.appendingPathComponent(written.deletingPathExtension().lastPathComponent + "." + compiledExtension)
        return FileManager.default.fileExists(atPath: compiled.path) ? compiled : written
    }
}
