import Foundation

/// Names the compiled form (.mlmodelc) of one package in the compile cache. The key covers the
/// whole package (program, weights, Manifest.json), so a re-export that changes any of its files
/// gets a new entry instead of reusing a stale compiled model.
///
/// Pure logic, tested on every platform; `CompiledModelStore` uses it on Apple platforms.
public enum CompiledModelKey {
    /// Hex digits of the digest kept in the cache entry's name (64 bits).
    public static let length = 16

    /// The key for `chunk`'s package at `package`: from export.json's `files` when the manifest
    /// lists them, else from the package's own files (`fromPackageContents`).
    public static func key(for chunk: ChunkSpec, package: URL) throws -> String {
        if let files = chunk.files, !files.isEmpty { return fromManifest(files) }
        return try fromPackageContents(at: package)
    }

    /// A digest of every (path, sha256) pair export.json lists for the package, sorted by path, so
    /// the same files give the same key whatever order the manifest writes them in.
    public static func fromManifest(_ files: [PackageFile]) -> String {
        digest(scheme: "elm-export files sha256", files.map { ($0.path, $0.sha256.lowercased()) })
    }

    /// For manifests without `files`: every regular file under the package with its size and
    /// modification time (reading gigabytes of weights on each launch would defeat the cache).
    /// A re-export rewrites the files, so it changes their times.
    public static func fromPackageContents(at package: URL) throws -> String {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: package.path, isDirectory: &isDirectory) else {
            throw ManifestError(source: package.path, reason: "the package named in export.json is missing; copy the whole export folder")
        }
        let paths = isDirectory.boolValue ? try manager.subpathsOfDirectory(atPath: package.path) : [""]
        var entries: [(String, String)] = []
        for path in paths {
            let full = path.isEmpty ? package.path : package.appendingPathComponent(path).path
            let attributes = try manager.attributesOfItem(atPath: full)
            guard attributes[.type] as? FileAttributeType == .typeRegular else { continue }
            let size = (attributes[.size] as? NSNumber)?.int64Value ?? -1
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            entries.append((path, "\(size) bytes, modified \(Int64((modified * 1000).rounded())) ms"))
        }
        return digest(scheme: "package file sizes and times", entries)
    }

    /// SHA-256 over `scheme` and the entries sorted by path (bytewise), one "path NUL value LF" each
    /// (a path holds no NUL and a value no LF, so the encoding is unambiguous), cut to `length`.
    static func digest(scheme: String, _ entries: [(path: String, value: String)]) -> String {
        let sorted = entries.sorted { a, b in
            a.path == b.path ? a.value.utf8.lexicographicallyPrecedes(b.value.utf8)
                : a.path.utf8.lexicographicallyPrecedes(b.path.utf8)
        }
        var hasher = SHA256()
        hasher.update(scheme + "\n")
        for (path, value) in sorted {
            hasher.update(path)
            hasher.update([0])
            hasher.update(value + "\n")
        }
        return String(hasher.hexDigest().prefix(length))
    }
}
