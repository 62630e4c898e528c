/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Chat prompts for the common model families, without a Jinja engine.
 *
 * chat_template_detect() recognizes the family of a tokenizer.chat_template by
 * characteristic markers, as llama.cpp does; chat_template_apply() renders a
 * conversation the way that family's reference Hugging Face template does:
 *
 *   llama2   <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s>...
 *            (contents stripped; the system message goes into the first user turn)
 *   llama3   <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>
 *            ... (contents trimmed) [+ <|start_header_id|>assistant<|end_header_id|>\n\n]
 *   chatml   <|im_start|>{role}\n{content}<|im_end|>\n ... [+ <|im_start|>assistant\n]
 *            (no BOS, no default system prompt)
 *   mistral  <s>[INST] {user}[/INST] {assistant}</s>... (v0.3: the system message is put
 *            before the user message that ends the conversation, if one does, separated
 *            by a blank line)
 *   gemma    <bos><start_of_turn>user\n{content}<end_of_turn>\n ... "assistant" is "model";
 *            gemma has no system role: as Gemma 3's template does, the system text is
 *            merged into the first turn as "{system}\n\n{content}" [+ <start_of_turn>model\n]
 *   phi3     <|{role}|>\n{content}<|end|>\n ... [+ <|assistant|>\n, else EOS]
 *   zephyr   <|{role}|>\n{content}{EOS}\n ... [+ <|assistant|>\n]
 *   llama3.1 as llama3, but always opened by a system turn:
 *            <|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December
 *            2023\nToday Date: 26 Jul 2024\n\n{system, trimmed}<|eot_id|>; tool results
 *            go in an "ipython" turn as a JSON string
 *   llama3.2 as llama3.1 with today's date (local time, "%d %b %Y"), as the template's
 *            strftime_now() gives it
 *   qwen2    chatml, with "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
 *            first when the conversation does not start with a system message
 *   qwen2.5  chatml, with "You are Qwen, created by Alibaba Cloud. You are a helpful
 *            assistant." as that default; tool results go into a user turn as
 *            "\n<tool_response>\n{content}\n</tool_response>" blocks
 *
 * bos_text and eos_text are the texts of the model's BOS and EOS tokens (NULL: empty);
 * the rendered prompt contains them as text, to be tokenized with parse_special and
 * add_special off. Roles other than system/user/assistant are rendered verbatim by the
 * families whose templates do that (llama3, chatml, gemma) and dropped by the others.
 * A system message counts only as the first message (llama2, mistral, gemma). */

#include <stdbool.h>
#include <stddef.h>

typedef struct ChatMessage {
        const char *role;
        const char *content;
} ChatMessage;

typedef enum ChatTemplateKind {
        CHAT_TEMPLATE_LLAMA2,
        CHAT_TEMPLATE_LLAMA3,
        CHAT_TEMPLATE_CHATML,
        CHAT_TEMPLATE_MISTRAL,
        CHAT_TEMPLATE_GEMMA,
        CHAT_TEMPLATE_PHI3,
        CHAT_TEMPLATE_ZEPHYR,
        CHAT_TEMPLATE_LLAMA31, /* added: Llama 3.1's system header, fixed date */
        CHAT_TEMPLATE_LLAMA32, /* added: Llama 3.2's system header, today's date */
        CHAT_TEMPLATE_QWEN2, /* added: ChatML with Qwen2's default system prompt */
        CHAT_TEMPLATE_QWEN25, /* added: ChatML with Qwen2.5's default system prompt */
        _CHAT_TEMPLATE_MAX
} ChatTemplateKind;

/* The family used when a template is missing or not recognized. */
#define CHAT_TEMPLATE_DEFAULT CHAT_TEMPLATE_CHATML

/* 1: recognized (a template name as chat_template_name() gives is recognized too);
 * 0: not recognized (or NULL source), *ret = CHAT_TEMPLATE_DEFAULT; -EINVAL: ret NULL. */
int chat_template_detect(const char *jinja_source, ChatTemplateKind *ret);

/* Renders into a new NUL-terminated string. -EINVAL on a bad kind, msgs NULL with n > 0
 * or a message without role or content; -ENOMEM. */
int chat_template_apply(ChatTemplateKind k, const ChatMessage *msgs, size_t n,
                        bool add_generation_prompt, const char *bos_text, const char *eos_text,
                        char **ret);

/* The default system prompt a ChatML template inserts when the conversation has none
 * (Qwen2's, SmolLM2's, ...): the constant text of a '<|im_start|>system\n...<|im_end|>'
 * string literal in the source, with its escapes decoded. Returns 1 and a new string, 0
 * when the template has no such literal, -EINVAL, -ENOMEM. A caller rendering with
 * CHAT_TEMPLATE_CHATML puts it first as a system message when the conversation does not
 * start with one; the qwen2 and qwen2.5 families already do. */
int chat_template_default_system(const char *jinja_source, char **ret);

/* "llama2", "llama3", "chatml", "mistral", "gemma", "phi3", "zephyr", "llama3.1",
 * "llama3.2", "qwen2", "qwen2.5"; NULL if invalid. */
const char *chat_template_name(ChatTemplateKind k);
/* The reverse (also accepts a few llama.cpp aliases); -EINVAL if unknown. */
int chat_template_from_name(const char *name, ChatTemplateKind *ret);
