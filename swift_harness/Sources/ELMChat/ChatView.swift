import Foundation
#if canImport(SwiftUI)
import SwiftUI
#else
import SwiftUIStandIn
#endif

/// The chat screen: messages, a status line with the live decode speed, a prompt field with
/// Send / Stop. SwiftUI exists only on Apple platforms; elsewhere this compiles against
/// `SwiftUIStandIn` (type-checked, never shown).
public struct ChatView: View {
    @State private var session = ChatSession()
    @State private var draft = ""
    /// The adapter picked in the status bar; nil: the base model.
    @State private var adapterChoice: String?
    /// nil: the "Model" folder in the app bundle.
    private let modelFolder: URL?

    public init(modelFolder: URL? = nil) {
        self.modelFolder = modelFolder
    }

    public var body: some View {
        NavigationStack {
            VStack(spacing: 0) {
                ScrollViewReader { proxy in
                    List(session.messages) { message in
                        MessageRow(message: message).id(message.id)
                    }
                    .listStyle(.plain)
                    .onChange(of: session.messages.last?.text) {
                        if let last = session.messages.last { proxy.scrollTo(last.id, anchor: .bottom) }
                    }
                }
                statusBar
                inputBar
            }
            .navigationTitle("OpenELM")
            #if os(iOS)
            .navigationBarTitleDisplayMode(.inline)
            #endif
        }
        .task {
            if let modelFolder {
                await session.load(folder: modelFolder)
            } else {
                await session.load()
            }
        }
    }

    private var statusBar: some View {
        HStack {
            Text(session.status).lineLimit(1)
            Spacer()
            if let rate = session.tokensPerSecond, session.isGenerating {
                Text(String(format: "%.1f tok/s", rate)).monospacedDigit()
            }
            if !session.availableAdapters.isEmpty {
                adapterPicker
            }
        }
        .font(.caption)
        .foregroundStyle(.secondary)
        .padding(.horizontal)
        .padding(.vertical, 4)
    }

    /// The export's LoRA adapters and the base model; choosing one reloads the model with it.
    private var adapterPicker: some View {
        Picker("Adapter", selection: $adapterChoice) {
            Text("Base model").tag(String?.none)
            ForEach(session.availableAdapters, id: \.self) { name in
                Text(name).tag(String?.some(name))
            }
        }
        .onChange(of: adapterChoice) {
            Task { await session.selectAdapter(adapterChoice) }
        }
    }

    private var inputBar: some View {
        HStack {
            TextField("Write a prompt", text: $draft, axis: .vertical)
                .textFieldStyle(.roundedBorder)
                .lineLimit(1...5)
                .disabled(!session.isReady)
            if session.isGenerating {
                Button("Stop", systemImage: "stop.circle.fill") { session.stop() }
                    .labelStyle(.iconOnly)
                    .font(.title2)
            } else {
                Button("Send", systemImage: "arrow.up.circle.fill") {
                    session.send(draft)
                    draft = ""
                }
                .labelStyle(.iconOnly)
                .font(.title2)
                .disabled(!session.isReady || draft.isEmpty)
            }
        }
        .padding()
    }
}

private struct MessageRow: View {
    let message: ChatMessage

    var body: some View {
        VStack(alignment: message.role == .user ? .trailing : .leading, spacing: 4) {
            Text(message.text.isEmpty ? "…" : message.text)
                .padding(10)
                .background(message.role == .user ? Color.accentColor.opacity(0.15) : Color.secondary.opacity(0.12),
                            in: RoundedRectangle(cornerRadius: 12))
                .textSelection(.enabled)
            if let stats = message.stats {
                Text(stats).font(.caption2).foregroundStyle(.secondary)
            }
        }
        .frame(maxWidth: .infinity, alignment: message.role == .user ? .trailing : .leading)
        .listRowSeparator(.hidden)
    }
}
