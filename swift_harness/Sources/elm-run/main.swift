import ELMKit
import Foundation

// elm-run: runs an elm-export folder with Core ML or Core AI from the command line.
// Exit codes: 0 success, 1 runtime failure (or no Core ML / Core AI), 2 bad command line.

func fail(_ message: String, code: Int32) -> Never {
    FileHandle.standardError.write(Data("elm-run: \(message)\n".utf8))
    exit(code)
}

let options: RunOptions
do {
    guard let parsed = try RunOptions.parse(Array(CommandLine.arguments.dropFirst())) else {
        print(RunOptions.usage)
        exit(0)
    }
    options = parsed
} catch {
    fail("\(error)\nRun 'elm-run --help' for usage.", code: 2)
}

#if canImport(CoreML)
if #available(macOS 15.0, iOS 18.0, *) {
    do {
        try await Runner.run(options)
    } catch {
        fail("\(error)", code: 1)
    }
} else {
    fail("Core ML States need macOS 15 or later", code: 1)
}
#else
fail("Core ML and Core AI are not available on this OS; run elm-run on macOS 15+ (Core AI exports: macOS 27+), or use ELMKit in an iOS app", code: 1)
#endif
