#if canImport(CoreML)
import CoreML
import Foundation

/// Finds or makes the compiled form (.mlmodelc) of one exported package (one chunk). Compiling a
/// large .mlpackage takes a while, so the result is kept in the Caches folder and reused.
@available(macOS 15.0, iOS 18.0, *)
enum CompiledModelStore {
    static func compiledModel(in folder: URL, chunk: ChunkSpec) async throws -> URL {
        let package = folder.appendingPathComponent(chunk.package)
        if package.pathExtension == "mlmodelc" { return package }
        // Xcode compiles an .mlpackage added to an app target into <name>.mlmodelc next to it.
        let stem = package.deletingPathExtension().lastPathComponent
        let precompiled = folder.appendingPathComponent(stem + ".mlmodelc")
        if FileManager.default.fileExists(atPath: precompiled.path) { return precompiled }
        guard FileManager.default.fileExists(atPath: package.path) else {
            throw ManifestError(source: package.path, reason: "the package named in export.json is missing; copy the whole export folder")
        }

        let caches = try FileManager.default.url(for: .cachesDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
            .appendingPathComponent("ELMKit", isDirectory: true)
        let cached = caches.appendingPathComponent("\(stem)-\(try cacheKey(package, chunk)).mlmodelc")
        if FileManager.default.fileExists(atPath: cached.path) { return cached }

        let compiled = try await MLModel.compileModel(at: package)
        try FileManager.default.createDirectory(at: caches, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(at: cached)
        try FileManager.default.moveItem(at: compiled, to: cached)
        return cached
    }

    /// The package's weights hash from export.json, else its modification time: a re-export gets a new entry.
    private static func cacheKey(_ package: URL, _ chunk: ChunkSpec) throws -> String {
        if let sha = chunk.weightsSHA256, !sha.isEmpty { return String(sha.prefix(16)) }
        let attributes = try FileManager.default.attributesOfItem(atPath: package.path)
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return String(Int(modified))
    }
}
#endif
