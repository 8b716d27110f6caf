/// A candidate merge of the symbol at `position` with its right neighbour.
struct MergeCandidate {
    let rank: Int32
    let position: Int32
    let newId: Int32

    /// Lower rank first, then the leftmost position: the order Hugging Face's BPE pops merges in.
    @inline(__always)
    func comesBefore(_ other: MergeCandidate) -> Bool {
        rank != other.rank ? rank < other.rank : position < other.position
    }
}

/// A binary min-heap of merge candidates (the standard library has no priority queue).
struct MergeQueue {
    private var items: [MergeCandidate] = []

    init(capacity: Int) { items.reserveCapacity(capacity) }

    mutating func push(_ item: MergeCandidate) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].comesBefore(items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> MergeCandidate? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        items[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            guard left < items.count else { break }
            var best = left
            if left + 1 < items.count, items[left + 1].comesBefore(items[left]) { best = left + 1 }
            guard items[best].comesBefore(items[parent]) else { break }
            items.swapAt(best, parent)
            parent = best
        }
        return top
    }
}
