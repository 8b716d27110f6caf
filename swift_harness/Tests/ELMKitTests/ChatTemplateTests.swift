import Testing
@testable import ELMKit

@Suite struct ChatTemplateTests {
    /// The OpenELM-Instruct template, rendered by transformers' apply_chat_template for every case.
    @Test func goldenCasesRenderByteIdentical() throws {
        let golden = try Fixtures.decode(ChatTemplateGolden.self, from: "golden_chat_template.json")
        #expect(golden.cases.count >= 20)
        let template = try ChatTemplate(source: golden.template)
        for (i, golden) in golden.cases.enumerated() {
            let text = try template.render(messages: golden.messages.map { ChatTurn(role: $0.role, content: $0.content) },
                                           addGenerationPrompt: golden.add_generation_prompt,
                                           bosToken: "<s>", eosToken: "</s>")
            #expect(sameScalars(text, golden.text), "case \(i): \(escaped(text)) != \(escaped(golden.text))")
        }
        #expect(golden.bos_token == "<s>" && golden.eos_token == "</s>")
    }

    @Test(arguments: JinjaCases.all)
    func rendersAsJinja2Does(_ jinja: JinjaCase) throws {
        let text = try ChatTemplate(source: jinja.template)
            .render(messages: jinja.messages, addGenerationPrompt: jinja.generationPrompt, bosToken: "<s>", eosToken: "</s>")
        #expect(sameScalars(text, jinja.text), "\(escaped(text)) != \(escaped(jinja.text))")
    }

    @Test func theOpenELMTemplateWithAndWithoutTheGenerationPrompt() throws {
        let template = try ChatTemplate(source: Self.openELM)
        let messages = [turn("system", "S"), turn("user", "hi")]
        #expect(try template.render(messages: messages, addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>")
                == "<|system|>\nS</s>\n<|user|>\nhi</s>\n<|assistant|>\n")
        #expect(try template.render(messages: messages, addGenerationPrompt: false, bosToken: "<s>", eosToken: "<eos>")
                == "<|system|>\nS<eos>\n<|user|>\nhi<eos>\n")
        #expect(try template.render(messages: [], addGenerationPrompt: true, bosToken: "", eosToken: "") == "")
    }

    /// Anything the interpreter does not know fails when the template is read, naming it and its line.
    @Test(arguments: [
        ("line 1\n{% macro m() %}x{% endmacro %}", "unsupported tag '{% macro %}'", 2),
        ("{% for m in messages %}\n{{ m.content.strip() }}{% endfor %}", "method calls ('.strip(...)')", 2),
        ("{{ messages | tojson }}", "unsupported filter 'tojson'", 1),
        ("{{ 1 / 2 }}", "the operator '/'", 1),
        ("{{ {'a': 1} }}", "dict literals", 1),
        ("{% for a, b in messages %}{% endfor %}", "unpacking", 1),
        ("{% for m in messages if m %}{% endfor %}", "loop filters", 1),
        ("{% set ns.x = 1 %}", "namespaces", 1),
        ("{% set x %}y{% endset %}", "block assignments", 1),
        ("\n\n{% if true %}never closed", "'{% if %}' is never closed: missing {% elif %} or {% else %} or {% endif %}", 3),
        ("{% endfor %}", "unexpected '{% endfor %}'", 1),
        ("{{ 'open }}", "unterminated string literal", 1),
        ("{{ x is divisibleby 3 }}", "unsupported test 'is divisibleby'", 1),
        ("{{ x is none is defined }}", "chained tests", 1),
        ("{{ x is defined 3 }}", "test arguments ('is defined 3')", 1),
        ("{{ range(3) }}", "function calls are not supported", 1),
        ("{{ 1.5 }}", "float literals", 1),
        ("{{ x[1:2:3] }}", "slice steps", 1),
        ("{# no end", "missing end of comment", 1),
        ("{{ x ", "missing end of tag", 1),
    ])
    func unsupportedConstructsFailAtParseTime(_ source: String, _ message: String, _ line: Int) {
        do {
            _ = try ChatTemplate(source: source)
            Issue.record("no error for \(escaped(source))")
        } catch let error as ChatTemplateError {
            guard case .syntax(let got, let gotLine) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(got.contains(message), "\(got)")
            #expect(gotLine == line, "\(error)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func raiseExceptionThrowsTheTemplatesMessage() throws {
        let template = try ChatTemplate(source: "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first turn must be the user' ~ '!') }}{% endif %}ok")
        #expect(try template.render(messages: [turn("user", "a")], addGenerationPrompt: false, bosToken: "", eosToken: "") == "ok")
        #expect(throws: ChatTemplateError.raised("first turn must be the user!")) {
            try template.render(messages: [turn("assistant", "a")], addGenerationPrompt: false, bosToken: "", eosToken: "")
        }
    }

    /// jinja2's default Undefined is empty and falsy, but `+`, ordering and subscripts of it fail,
    /// as do operations on the wrong types (Python's TypeError).
    @Test func runtimeErrorsMatchJinja2() throws {
        func render(_ source: String) throws -> String {
            try ChatTemplate(source: source).render(messages: [turn("user", "a")], addGenerationPrompt: false, bosToken: "", eosToken: "")
        }
        #expect(throws: ChatTemplateError.undefined("missing", line: 1)) { try render("{{ missing + 'x' }}") }
        #expect(throws: ChatTemplateError.undefined("missing", line: 2)) { try render("\n{{ missing['key'] }}") }
        #expect(throws: ChatTemplateError.undefined("missing", line: 1)) { try render("{{ missing.key }}") }
        #expect(throws: ChatTemplateError.undefined("missing", line: 1)) { try render("{% if missing < 1 %}{% endif %}") }
        #expect(throws: ChatTemplateError.self) { try render("{{ 1 + 2 ~ 3 }}") }  // 1 + '23': ~ binds tighter
        #expect(throws: ChatTemplateError.self) { try render("{{ 'a' + 1 }}") }
        #expect(throws: ChatTemplateError.self) { try render("{{ 'a' < 1 }}") }
        #expect(throws: ChatTemplateError.self) { try render("{% for x in 3 %}{% endfor %}") }
        #expect(throws: ChatTemplateError.type("string formatting with '%' is not supported", line: 1)) { try render("{{ 'a%s' % 1 }}") }
        #expect(try render("{{ missing }}{{ missing ~ 'x' }}{{ missing | length }}{{ 'a' in missing }}") == "x0False")
    }

    static let openELM = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
}
