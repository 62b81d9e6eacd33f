#!/usr/bin/env python3
"""Chat-template goldens for test/unit/test_template.c: the ids (and text) transformers'
apply_chat_template produces for every conversation in conversations.json, with the Qwen3,
Llama-3 and Llama-2 tokenizers of data/tokenizers/ (and gemma_synth, the Llama-2 one with Gemma's
turn markers added: see MISTRAL_TEMPLATE below for what is and is not verified).

    pip install transformers jinja2 tokenizers      # no torch needed
    UPDATE_GOLDEN=1 python3 test/golden/template/gen_golden.py

Writes golden.json next to this script (only with UPDATE_GOLDEN=1; otherwise it regenerates in
memory and reports whether the committed file is current).

Which Jinja renders each sw template:
  qwen3    the Qwen3 tokenizer's own chat_template
  qwen2_5  Qwen2.5-Instruct's chat_template (QWEN25_TEMPLATE below, verbatim); it inserts
           "You are Qwen, created by Alibaba Cloud. ..." when there is no system message
  qwen     the same Jinja; sw's default system "You are a helpful assistant." is passed as a
           system message when the conversation has none (ms-swift's template default)
  chatml   the same Jinja, conversations with a system message only (chatml has no default)
  llama3   the Llama-3 tokenizer's own chat_template. That template (Meta's first release)
           appends the assistant header whether or not add_generation_prompt is set; Meta's
           later revision (LLAMA3_REVISED below) puts it under `if add_generation_prompt`. For
           training renders (add_generation_prompt false) the golden is the revised template's
           output, and the script asserts it equals the shipped template's output minus exactly
           that header.
  llama    Llama-2-chat's chat_template (LLAMA2_TEMPLATE, from meta-llama/Llama-2-7b-chat-hf's
           tokenizer_config.json; the tokenizer folder here ships none), with ms-swift's default
           Llama-2 system prompt passed when the conversation has none.
  mistral  MISTRAL_TEMPLATE (Mistral-7B-Instruct) on the llama2 tokenizer; no system role.
  gemma    GEMMA_TEMPLATE (gemma-2-it) on gemma_synth; no system role.
tokenizer.json.gz is decompressed into a temporary folder for transformers. Every golden's ids
are also checked against tokenizers' own Tokenizer on the same tokenizer.json, so a case where
transformers post-processes differently would stop the script instead of entering the golden.
"""
import gzip
import json
import os
import shutil
import sys
import tempfile

from tokenizers import Tokenizer
from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TOKDIR = os.path.join(REPO, "data", "tokenizers")
if not os.path.isdir(os.path.join(TOKDIR, "qwen3")):
    TOKDIR = os.path.join(REPO, "..", "shared", "data", "tokenizers")

QWEN25_TEMPLATE = r'''{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
'''

LLAMA3_REVISED = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
    "{% endif %}{% endfor %}"
)

# Mistral-7B-Instruct (v0.1/v0.2) and gemma-2-*-it chat templates, transcribed from their
# tokenizer_config.json files as published (not downloadable here: no network). Their own
# tokenizers are not in data/tokenizers/ either, so the goldens use stand-ins: Mistral's v1
# tokenizer is the same SentencePiece-BPE style with <s>/</s> (llama2 here); Gemma's
# <start_of_turn>/<end_of_turn> are added as special tokens to the llama2 tokenizer
# (gemma_synth: GEMMA_SYNTH_TOKENS, the same patch test_template.c applies). The real Mistral
# and Gemma tokenizers are NOT verified by these goldens.
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}"
    "{% endif %}{% endfor %}"
)
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
GEMMA_SYNTH_TOKENS = ["<start_of_turn>", "<end_of_turn>"]

# ms-swift's template defaults (swift/template/templates/{utils,llama}.py).
DEFAULT_SYSTEM = "You are a helpful assistant."
LLAMA2_SYSTEM = (
    "You are a helpful, respectful and honest assistant. Always answer as helpfully as possible, "
    "while being safe. Your answers should not include any harmful, unethical, racist, sexist, "
    "toxic, dangerous, or illegal content. Please ensure that your responses are socially unbiased "
    "and positive in nature.\n\nIf a question does not make any sense, or is not factually "
    "coherent, explain why instead of answering something not correct. If you don't know the "
    "answer to a question, please don't share false information.")

ALL = ["single", "system", "multi", "chinese", "spaces"]
# (tokenizer, sw template, jinja, default system to pass, conversations, generation-prompt cases)
PLAN = [
    ("qwen3", "qwen3", "own", None,
     ALL + ["tool", "tool_result", "two_tools", "reasoning", "think_inline", "think_history"],
     ["single", "multi", "tool"]),
    ("qwen3", "qwen2_5", QWEN25_TEMPLATE, None, ALL + ["tool", "tool_result", "two_tools"], ["single", "tool"]),
    ("qwen3", "qwen", QWEN25_TEMPLATE, DEFAULT_SYSTEM, ALL + ["tool_result"], ["single"]),
    ("qwen3", "chatml", QWEN25_TEMPLATE, None, ["system", "multi"], ["system"]),
    ("llama3", "llama3", "own", None, ALL + ["tool_result"], ["single", "multi"]),
    ("llama2", "llama", LLAMA2_TEMPLATE, LLAMA2_SYSTEM, ALL, ["single", "multi"]),
    ("llama2", "mistral", MISTRAL_TEMPLATE, None, ["single", "multi_nosys", "chinese", "spaces"],
     ["single", "multi_nosys"]),
    ("gemma_synth", "gemma", GEMMA_TEMPLATE, None,
     ["single", "multi_nosys", "chinese", "spaces"], ["single", "multi_nosys"]),
]


def load_tokenizer(name, tmp):
    synth = name == "gemma_synth"
    src = os.path.join(TOKDIR, "llama2" if synth else name)
    dst = os.path.join(tmp, name)
    os.makedirs(dst)
    with gzip.open(os.path.join(src, "tokenizer.json.gz"), "rb") as f, open(
            os.path.join(dst, "tokenizer.json"), "wb") as g:
        shutil.copyfileobj(f, g)
    if synth:  # the llama2 tokenizer plus Gemma's turn markers as special added tokens
        path = os.path.join(dst, "tokenizer.json")
        tj = json.load(open(path, encoding="utf-8"))
        nxt = max([t["id"] for t in tj["added_tokens"]] + [len(tj["model"]["vocab"]) - 1]) + 1
        for k, content in enumerate(GEMMA_SYNTH_TOKENS):
            tj["added_tokens"].append({"id": nxt + k, "content": content, "single_word": False,
                                       "lstrip": False, "rstrip": False, "normalized": False,
                                       "special": True})
        json.dump(tj, open(path, "w", encoding="utf-8"), ensure_ascii=False)
        shutil.copy(os.path.join(src, "tokenizer_config.json"), dst)
        tok = AutoTokenizer.from_pretrained(dst)  # tokenizer_config.json lists the old ones only
        tok.add_special_tokens({"additional_special_tokens": GEMMA_SYNTH_TOKENS})
        assert tok.convert_tokens_to_ids(GEMMA_SYNTH_TOKENS) == [nxt, nxt + 1]
        return tok, Tokenizer.from_file(path)
    shutil.copy(os.path.join(src, "tokenizer_config.json"), dst)
    return AutoTokenizer.from_pretrained(dst), Tokenizer.from_file(os.path.join(dst, "tokenizer.json"))


def render(tok, messages, jinja, agp, **extra):
    kw = {} if jinja == "own" else {"chat_template": jinja}
    kw.update(extra)  # template kwargs, e.g. Qwen3's enable_thinking
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=agp, **kw)
    ids = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=agp, **kw)
    if isinstance(ids, dict) or hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
        ids = ids["input_ids"]
    return text, list(ids)


def main():
    convs = json.load(open(os.path.join(HERE, "conversations.json")))["conversations"]
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        toks = {}
        for tname, tpl, jinja, default_system, names, agp_names in PLAN:
            if tname not in toks:
                toks[tname] = load_tokenizer(tname, tmp)
            tok, raw = toks[tname]
            for name in names:
                for agp in ([False, True] if name in agp_names else [False]):
                    messages = [dict(m) for m in convs[name]["messages"]]
                    if agp:
                        messages = messages[:-1]  # end on the user turn; render the prompt
                    if default_system and messages[0]["role"] != "system":
                        messages.insert(0, {"role": "system", "content": default_system})
                    j = jinja
                    if tname == "llama3" and not agp:
                        shipped_text, shipped_ids = render(tok, messages, "own", False)
                        j = LLAMA3_REVISED
                    text, ids = render(tok, messages, j, agp)
                    if tname == "llama3" and not agp:
                        header = "<|start_header_id|>assistant<|end_header_id|>\n\n"
                        assert shipped_text == text + header, name
                        tail = raw.encode(header, add_special_tokens=False).ids
                        assert shipped_ids == ids + tail, name
                    direct = raw.encode(text, add_special_tokens=False).ids
                    assert direct == ids, f"{tname}/{tpl}/{name}: transformers and tokenizers differ"
                    cases.append({"tokenizer": tname, "template": tpl, "conversation": name,
                                  "add_generation_prompt": agp, "text": text, "ids": ids})
                    if tpl == "qwen3" and agp:  # enable_thinking=False: the empty think block
                        text, ids = render(tok, messages, j, agp, enable_thinking=False)
                        assert raw.encode(text, add_special_tokens=False).ids == ids
                        cases.append({"tokenizer": tname, "template": tpl, "conversation": name,
                                      "add_generation_prompt": agp, "enable_thinking": False,
                                      "text": text, "ids": ids})
    out = json.dumps({"generator": "test/golden/template/gen_golden.py", "cases": cases},
                     ensure_ascii=False, indent=1) + "\n"
    path = os.path.join(HERE, "golden.json")
    if os.environ.get("UPDATE_GOLDEN") == "1":
        with open(path, "w", encoding="utf-8") as f:
            f.write(out)
        print(f"wrote {path}: {len(cases)} cases")
        return 0
    same = os.path.exists(path) and open(path, encoding="utf-8").read() == out
    print(f"{len(cases)} cases; committed golden.json is {'current' if same else 'OUT OF DATE'}"
          " (UPDATE_GOLDEN=1 rewrites it)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
