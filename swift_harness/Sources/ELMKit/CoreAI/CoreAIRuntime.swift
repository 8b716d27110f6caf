/// Whether this build and this OS can run Core AI models (the `.aimodel` packages of an export).
public enum CoreAIRuntime {
    /// True when the Core AI runner is in this build and the OS has Core AI (iOS 27 / macOS 27 or
    /// later). Built with an SDK that has Core AI, on Apple silicon (Core AI's hardware); never on
    /// Linux, where the runner is compiled against `CoreAIStandIn` only to be type-checked.
    public static var isAvailable: Bool {
        #if canImport(CoreAI) && arch(arm64)
        if #available(macOS 27.0, iOS 27.0, *) { return true }
        #endif
        return false
    }
}
