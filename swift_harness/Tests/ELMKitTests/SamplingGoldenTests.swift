import Testing
@testable import ELMKit

/// Python's mirror of `Sampler` (tests/test_swift_golden.py) drew these tokens from these logits:
/// the same algorithm must give the same tokens, so a seed means the same text on both sides.
@Suite struct SamplingGoldenTests {
    @Test func everyCaseDrawsPythonsTokens() throws {
        let golden = try Fixtures.decode(SamplingGolden.self, from: "golden_sampling.json")
        #expect(golden.cases.count >= 20)
        for golden in golden.cases {
            #expect(golden.parameters.sampling.problem == nil, "\(golden.name)")
            var sampler = Sampler(parameters: golden.parameters.sampling)
            var context = golden.context
            var tokens: [Int] = []
            for row in golden.steps {
                let token = sampler.next(logits: row.map(\.value), context: context)
                tokens.append(token)
                context.append(token)
            }
            #expect(tokens == golden.tokens, "\(golden.name)")
        }
    }
}
