#if canImport(CoreML)
import CoreML
#else
import CoreMLStandIn  // Apple's declarations, so this file is type-checked where Core ML is missing
#endif
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
        // Keyed on every file of the package: a re-export that changes the program but not the
        // weights must not reuse the old compiled model.
        let key = try CompiledModelKey.key(for: chunk, package: package)
        let cached = caches.appendingPathComponent("\(stem)-\(key).mlmodelc")
        if FileManager.default.fileExists(atPath: cached.path) { return cached }

        let compiled = try await MLModel.compileModel(at: package)
        try FileManager.default.createDirectory(at: caches, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(at: cached)
        try FileManager.default.moveItem(at: compiled, to: cached)
        return cached
    }
}
