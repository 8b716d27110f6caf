import Testing
@testable import ELMKit

/// One template rendered by Python's jinja2 (trim_blocks, lstrip_blocks, as transformers sets it)
/// with `messages`, `add_generation_prompt`, bos_token "<s>" and eos_token "</s>".
struct JinjaCase: CustomTestStringConvertible, Sendable {
    let name: String
    let messages: [ChatTurn]
    let generationPrompt: Bool
    let template: String
    let text: String

    init(_ name: String, _ messages: [ChatTurn], generationPrompt: Bool = false, _ template: String, _ text: String) {
        self.name = name
        self.messages = messages
        self.generationPrompt = generationPrompt
        self.template = template
        self.text = text
    }

    var testDescription: String { name }
}

func turn(_ role: String, _ content: String) -> ChatTurn { ChatTurn(role: role, content: content) }

/// Expected texts written by jinja2 3.1 for these exact templates (see each case's name for what it covers).
enum JinjaCases {
    static let conversation = [turn("system", "Be brief."), turn("user", "Hi"), turn("assistant", "Hello!"), turn("user", "  x  ")]
    static let oneTurn = [turn("user", "One")]

    static let all: [JinjaCase] = [
        JinjaCase("loopVariables", conversation,
                  "{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.length }}/{{ loop.revindex }}/{{ loop.revindex0 }}{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %};{% endfor %}",
                  "1/0/4/4/3F;2/1/4/3/2;3/2/4/2/1;4/3/4/1/0L;"),
        JinjaCase("ifElifElse", conversation,
                  "{% for m in messages %}{% if m.role == 'user' %}U{% elif m['role'] == 'system' %}S{% else %}A{% endif %}{% endfor %}",
                  "SUAU"),
        JinjaCase("setScoping", conversation,
                  "{% set n = 1 %}{% for m in messages %}{% set n = n + loop.index %}{{ n }},{% endfor %}{{ n }}|{% if true %}{% set k = 'if' %}{% endif %}{{ k }}",
                  "2,3,4,5,1|if"),
        JinjaCase("literalsAndEscapes", oneTurn,
                  "{{ 'a\\'b' }}|{{ \"c\\\"d\" }}|{{ 'tab\\tnl\\nbs\\\\' }}|{{ 'x' 'y' }}|{{ 42 }}|{{ true }}{{ false }}{{ none }}|{{ [1, 'a', none, true] }}|{{ 'it\\'s' ~ [\"it's\"] }}",
                  "a'b|c\"d|tab\tnl\nbs\\|xy|42|TrueFalseNone|[1, 'a', None, True]|it's[\"it's\"]"),
        JinjaCase("arithmeticAndConcatenation", oneTurn,
                  "{{ 1 + 2 }}|{{ 7 - 10 }}|{{ -3 }}|{{ 'a' + 'b' }}|{{ 1 ~ 2 ~ 'c' }}|{{ 7 // 2 }},{{ -7 // 2 }},{{ -7 % 3 }},{{ 7 % -3 }},{{ 3 * 4 }},{{ 'ab' * 2 }}|{{ 1 ~ (2 + 3) }}",
                  "3|-3|-3|ab|12c|3,-4,2,-2,12,abab|15"),
        JinjaCase("comparisons", conversation,
                  "{{ 1 == 1 }}{{ 1 != 1 }}{{ 1 < 2 }}{{ 2 > 1 }}{{ 2 <= 2 }}{{ 3 >= 4 }}|{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }}|{{ 'a' < 'b' }}{{ 'B' < 'a' }}|{{ 1 == true }}{{ 'x' == 'x' }}{{ none == none }}{{ messages[0] == messages[0] }}",
                  "TrueFalseTrueTrueTrueFalse|TrueFalse|TrueTrue|TrueTrueTrueTrue"),
        JinjaCase("booleanOperators", oneTurn,
                  "{{ 0 or 'd' }}|{{ 'a' and 'b' }}|{{ 0 and 'b' }}|{{ not '' }}|{{ not messages }}|{{ nothing or 'fallback' }}|{{ '' or none }}",
                  "d|b|0|True|False|fallback|None"),
        JinjaCase("membership", oneTurn,
                  "{{ 'b' in 'abc' }}{{ 'z' in 'abc' }}{{ 'role' in messages[0] }}{{ 'x' in messages[0] }}{{ 2 in [1, 2] }}{{ 2 not in [1, 2] }}{{ 'a' in nothing }}{{ not 'a' in 'b' }}",
                  "TrueFalseTrueFalseTrueFalseFalseTrue"),
        JinjaCase("subscriptsAndAttributes", conversation,
                  "{{ messages[0]['content'] }}|{{ messages[0].role }}|{{ messages[-1].content }}|{{ messages[9] }}|{{ messages[0].missing }}|{{ 'abc'[1] }}{{ 'abc'[-1] }}|{{ messages[1:] | length }}{{ messages[:1][0].role }}{{ 'hello'[1:3] }}{{ 'hello'[-2:] }}|{{ messages.0.role }}",
                  "Be brief.|system|  x  |||bc|3systemello|system"),
        JinjaCase("filters", conversation,
                  "{{ messages[-1]['content'] | trim }}|{{ '  a b  ' | trim | upper }}|{{ 'MiXed' | lower }}{{ 'MiXed' | upper }}|{{ messages | length }}{{ 'h\u{e9}llo' | length }}{{ messages[0] | length }}{{ nothing | length }}|{{ messages | count }}|{{ nothing | upper }}|{{ 'x' | trim() }}",
                  "x|A B|mixedMIXED|4520|4||x"),
        JinjaCase("undefinedIsEmptyAndFalsy", oneTurn,
                  "[{{ nothing }}][{{ nothing.x if false }}]{% if nothing %}yes{% else %}no{% endif %}{% if not nothing %}!{% endif %}{{ nothing is defined }}{{ nothing is not defined }}{{ messages is defined }}{{ none is none }}{{ 'a' is string }}{{ 1 is number }}{{ nothing is undefined }}[{{ nothing ~ 'x' }}]",
                  "[][]no!FalseTrueTrueTrueTrueTrueTrue[x]"),
        JinjaCase("conditionalExpression", oneTurn,
                  "{{ 'yes' if messages else 'no' }}|{{ 'a' if false }}|{{ 'a' if false else 'b' if true else 'c' }}",
                  "yes||b"),
        JinjaCase("listOrderingAndRepetition", oneTurn,
                  "{{ [1, 2] < [1, 3] }}{{ [1] < [1, 0] }}{{ ['b'] > ['a', 'z'] }}{{ [] >= [] }}|{{ [1, 'x'] * 2 }}{{ 2 * ['a'] }}{{ [1] * 0 }}|{{ 'ab' * 0 }}.",
                  "TrueTrueTrueTrue|[1, 'x', 1, 'x']['a', 'a'][]|."),
        JinjaCase("forElse", oneTurn,
                  "{% for m in [] %}x{% else %}empty{% endfor %}|{% for m in messages %}{{ m.role }}{% else %}never{% endfor %}|{% for c in 'ab' %}{{ c }}.{% endfor %}|{% for k in messages[0] %}{{ k }},{% endfor %}|{% for x in nothing %}x{% endfor %}",
                  "empty|user|a.b.|role,content,|"),
        JinjaCase("nestedLoops", conversation,
                  "{% for m in messages %}{% for c in m.role %}{{ loop.index }}{% endfor %}:{{ loop.index }} {% endfor %}",
                  "123456:1 1234:2 123456789:3 1234:4 "),
        JinjaCase("trimBlocksAndLstrip", conversation,
                  "  {% if true %}\n  x\n  {% endif %}\n  y {% if true %} z {% endif %}\n\t{% for m in messages %}\n  {{ m.role }}\n  {% endfor %}\n",
                  "  x\n  y  z   system\n  user\n  assistant\n  user\n"),
        JinjaCase("manualWhitespaceControl", oneTurn,
                  "a  {%- if true -%}  b  {%- endif %}   \n c {{- ' d ' -}} \n e\n  {{ 'f' }}  \n{%+ if true %}g{% endif +%}\nh{% if true -%}\n\n   i{%- endif %}",
                  "ab   \n c d e\n  f  \ng\nhi"),
        JinjaCase("comments", oneTurn,
                  "{# top #}\n  {# indented #}\nx {# inline #} y\n{#- trimmed -#}   z\n",
                  "x  yz"),
        JinjaCase("crlfAndTrailingNewline", oneTurn,
                  "{% if true %}\r\nA\r\n{% endif %}\r\nB\rC\n\n",
                  "A\nB\nC\n"),
        JinjaCase("chatml", conversation, generationPrompt: true,
                  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
                  "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n  x  <|im_end|>\n<|im_start|>assistant\n"),
        JinjaCase("mistralStyle", [turn("user", "Hi"), turn("assistant", "Yo"), turn("user", "Bye")],
                  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
                  "<s>[INST] Hi [/INST]Yo</s>[INST] Bye [/INST]"),
        JinjaCase("llama2Style", [turn("system", "Sys"), turn("user", " Hi "), turn("assistant", "Yo"), turn("user", "Bye")],
                  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content | trim + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content | trim + ' ' + eos_token }}{% endif %}{% endfor %}",
                  "<s>[INST] <<SYS>>\nSys\n<</SYS>>\n\n Hi [/INST] Yo </s><s>[INST] Bye [/INST]"),
        JinjaCase("unicodeContent", [turn("user", "e\u{301}t\u{e9} \u{1f600} stra\u{df}e")],
                  "{% for m in messages %}{{ m.content }}|{{ m.content | upper }}|{{ m.content | length }}|{{ m.content[1] }}{% endfor %}",
                  "e\u{301}t\u{e9} \u{1f600} stra\u{df}e|E\u{301}T\u{c9} \u{1f600} STRASSE|13|\u{301}"),
    ]
}
