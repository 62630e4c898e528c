/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "basic/alloc-util.h"
#include "basic/buf.h"
#include "basic/string-util.h"
#include "engine/chat-template.h"

static const char *const names[_CHAT_TEMPLATE_MAX] = {
        [CHAT_TEMPLATE_LLAMA2] = "llama2",    [CHAT_TEMPLATE_LLAMA3] = "llama3",
        [CHAT_TEMPLATE_CHATML] = "chatml",    [CHAT_TEMPLATE_MISTRAL] = "mistral",
        [CHAT_TEMPLATE_GEMMA] = "gemma",      [CHAT_TEMPLATE_PHI3] = "phi3",
        [CHAT_TEMPLATE_ZEPHYR] = "zephyr",    [CHAT_TEMPLATE_LLAMA31] = "llama3.1",
        [CHAT_TEMPLATE_LLAMA32] = "llama3.2", [CHAT_TEMPLATE_QWEN2] = "qwen2",
        [CHAT_TEMPLATE_QWEN25] = "qwen2.5",
};

static const struct {
        const char *alias;
        ChatTemplateKind kind;
} aliases[] = {
        {"llama2-sys", CHAT_TEMPLATE_LLAMA2},       {"llama2-sys-bos", CHAT_TEMPLATE_LLAMA2},
        {"llama2-sys-strip", CHAT_TEMPLATE_LLAMA2}, {"mistral-v1", CHAT_TEMPLATE_MISTRAL},
        {"mistral-v3", CHAT_TEMPLATE_MISTRAL},      {"mistral-v3-tekken", CHAT_TEMPLATE_MISTRAL},
        {"mistral-v7", CHAT_TEMPLATE_MISTRAL},      {"qwen", CHAT_TEMPLATE_QWEN2},
};

const char *chat_template_name(ChatTemplateKind k)
{
        return (unsigned)k < _CHAT_TEMPLATE_MAX ? names[k] : NULL;
}

int chat_template_from_name(const char *name, ChatTemplateKind *ret)
{
        if (!name || !ret)
                return -EINVAL;
        for (unsigned i = 0; i < _CHAT_TEMPLATE_MAX; i++)
                if (streq(name, names[i])) {
                        *ret = i;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(aliases); i++)
                if (streq(name, aliases[i].alias)) {
                        *ret = aliases[i].kind;
                        return 0;
                }
        return -EINVAL;
}

int chat_template_detect(const char *src, ChatTemplateKind *ret)
{
        ChatTemplateKind k;

#define HAS(s) (strstr(src, (s)) != NULL)
        if (!ret)
                return -EINVAL;
        if (!src)
                goto fallback;
        if (chat_template_from_name(src, &k) == 0)
                goto found;
        /* Same order of tests as llama.cpp: some markers occur in several families. */
        if (HAS("<|im_start|>"))
                k = HAS("You are Qwen, created by Alibaba Cloud") ? CHAT_TEMPLATE_QWEN25
                        : HAS("You are a helpful assistant")      ? CHAT_TEMPLATE_QWEN2
                                                                  : CHAT_TEMPLATE_CHATML;
        else if (startswith(src, "mistral") || HAS("[INST]"))
                k = HAS("<<SYS>>") ? CHAT_TEMPLATE_LLAMA2 : CHAT_TEMPLATE_MISTRAL;
        else if (HAS("<|assistant|>") && HAS("<|end|>"))
                k = CHAT_TEMPLATE_PHI3;
        else if (HAS("<|user|>") &&
                 (HAS("<|endoftext|>") || (HAS("<|assistant|>") && HAS("eos_token"))))
                k = CHAT_TEMPLATE_ZEPHYR;
        else if (HAS("<start_of_turn>"))
                k = CHAT_TEMPLATE_GEMMA;
        else if (HAS("<|start_header_id|>") && HAS("<|end_header_id|>"))
                k = !HAS("Cutting Knowledge Date") ? CHAT_TEMPLATE_LLAMA3
                        : HAS("strftime_now")      ? CHAT_TEMPLATE_LLAMA32
                                                   : CHAT_TEMPLATE_LLAMA31;
        else
                goto fallback;
#undef HAS
found:
        *ret = k;
        return 1;
fallback:
        *ret = CHAT_TEMPLATE_DEFAULT;
        return 0;
}

int chat_template_default_system(const char *src, char **ret)
{
        static const char marker[] = "<|im_start|>system";

        if (!src || !ret)
                return -EINVAL;
        for (const char *p = strstr(src, marker); p; p = strstr(p + 1, marker)) {
                const char *q = p + strlen(marker);
                _cleanup_free_ char *text = NULL;
                size_t n = 0;

                /* the newline after the role, raw or escaped in the literal */
                if (*q == '\n')
                        q++;
                else if (q[0] == '\\' && q[1] == 'n')
                        q += 2;
                else
                        continue;
                text = malloc(strlen(q) + 1);
                if (!text)
                        return -ENOMEM;
                for (;; q++) {
                        if (!*q || *q == '\'' || *q == '"')
                                break; /* not one constant literal */
                        if (startswith(q, "<|im_end|>")) {
                                text[n] = 0;
                                *ret = TAKE_PTR(text);
                                return 1;
                        }
                        if (*q == '\\' && q[1]) {
                                q++;
                                text[n++] = *q == 'n' ? '\n' : *q == 't' ? '\t' : *q;
                        } else
                                text[n++] = *q;
                }
        }
        return 0;
}

/* Jinja's trim / Python's strip() for the ASCII blanks. */
static void trimmed(const char *s, const char **ret_p, size_t *ret_n)
{
        size_t n = strlen(s);

        while (n > 0 && strchr(" \t\n\r\v\f", s[0])) {
                s++;
                n--;
        }
        while (n > 0 && strchr(" \t\n\r\v\f", s[n - 1]))
                n--;
        *ret_p = s;
        *ret_n = n;
}

typedef struct Out {
        Buf b;
        int r;
} Out;

static void put_n(Out *o, const char *s, size_t n)
{
        if (o->r >= 0 && n > 0)
                o->r = buf_append(&o->b, s, n);
}

static void put(Out *o, const char *s)
{
        put_n(o, s, strlen(s));
}

static void put_trim(Out *o, const char *s)
{
        const char *p;
        size_t n;

        trimmed(s, &p, &n);
        put_n(o, p, n);
}

static bool role_is(const ChatMessage *m, const char *role)
{
        return streq(m->role, role);
}

/* The reference template strips each turn's content; the system message is glued in
 * front of the first turn's content before that. */
static void put_turn_llama2(Out *o, const char *system, const char *content)
{
        _cleanup_free_ char *joined = NULL;

        if (!system) {
                put_trim(o, content);
                return;
        }
        joined = strprintf("<<SYS>>\n%s\n<</SYS>>\n\n%s", system, content);
        if (!joined) {
                o->r = -ENOMEM;
                return;
        }
        put_trim(o, joined);
}

static void render_llama2(Out *o, const ChatMessage *m, size_t n, const char *bos, const char *eos)
{
        const char *system = NULL;
        size_t i = 0;

        if (n > 0 && role_is(&m[0], "system")) {
                system = m[0].content;
                i = 1;
        }
        for (size_t first = i; i < n; i++) {
                const char *sys = i == first ? system : NULL;
                if (role_is(&m[i], "user")) {
                        put(o, bos);
                        put(o, "[INST] ");
                        put_turn_llama2(o, sys, m[i].content);
                        put(o, " [/INST]");
                } else if (role_is(&m[i], "assistant")) {
                        put(o, " ");
                        put_turn_llama2(o, sys, m[i].content);
                        put(o, " ");
                        put(o, eos);
                }
        }
}

/* Mistral v0.3: the system message goes in front of the user message only when that
 * message ends the conversation (the reference template's "loop.last"). */
static void render_mistral(Out *o, const ChatMessage *m, size_t n, const char *bos, const char *eos)
{
        const char *system = NULL;
        size_t i = 0;

        if (n > 0 && role_is(&m[0], "system")) {
                system = m[0].content;
                i = 1;
        }
        put(o, bos);
        for (; i < n; i++) {
                if (role_is(&m[i], "user")) {
                        put(o, "[INST] ");
                        if (i == n - 1 && system) {
                                put(o, system);
                                put(o, "\n\n");
                        }
                        put(o, m[i].content);
                        put(o, "[/INST]");
                } else if (role_is(&m[i], "assistant")) {
                        put(o, " ");
                        put_trim(o, m[i].content);
                        put(o, eos);
                }
        }
}

/* Gemma has no system role; as Gemma 3's template does, a leading system message
 * becomes a prefix of the first turn, "{system}\n\n" (not trimmed). */
static void render_gemma(Out *o, const ChatMessage *m, size_t n, bool add_gen, const char *bos)
{
        const char *system = NULL;
        size_t i = 0;

        if (n > 0 && role_is(&m[0], "system")) {
                system = m[0].content;
                i = 1;
        }
        put(o, bos);
        for (size_t first = i; i < n; i++) {
                if (role_is(&m[i], "system"))
                        continue;
                put(o, "<start_of_turn>");
                put(o, role_is(&m[i], "assistant") ? "model" : m[i].role);
                put(o, "\n");
                if (i == first && system) {
                        put(o, system);
                        put(o, "\n\n");
                }
                put_trim(o, m[i].content);
                put(o, "<end_of_turn>\n");
        }
        if (add_gen)
                put(o, "<start_of_turn>model\n");
}

/* Jinja's tojson as Hugging Face defines it: json.dumps(s, ensure_ascii=False). */
static void put_json_string(Out *o, const char *s)
{
        put(o, "\"");
        for (const char *p = s; *p; p++) {
                unsigned char c = (unsigned char)*p;
                char esc[8];
                switch (c) {
                case '"':
                        put(o, "\\\"");
                        break;
                case '\\':
                        put(o, "\\\\");
                        break;
                case '\b':
                        put(o, "\\b");
                        break;
                case '\f':
                        put(o, "\\f");
                        break;
                case '\n':
                        put(o, "\\n");
                        break;
                case '\r':
                        put(o, "\\r");
                        break;
                case '\t':
                        put(o, "\\t");
                        break;
                default:
                        if (c < 0x20) {
                                snprintf(esc, sizeof(esc), "\\u%04x", c);
                                put(o, esc);
                        } else
                                put_n(o, p, 1);
                }
        }
        put(o, "\"");
}

static void render_llama31(Out *o, const ChatMessage *m, size_t n, bool add_gen, const char *bos,
                           const char *date)
{
        const char *system = "";
        size_t i = 0;

        if (n > 0 && role_is(&m[0], "system")) {
                system = m[0].content;
                i = 1;
        }
        put(o, bos);
        put(o,
            "<|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: ");
        put(o, date);
        put(o, "\n\n");
        put_trim(o, system);
        put(o, "<|eot_id|>");
        for (; i < n; i++) {
                if (role_is(&m[i], "tool") || role_is(&m[i], "ipython")) {
                        /* a string "is iterable" in Jinja: the template JSON-encodes it */
                        put(o, "<|start_header_id|>ipython<|end_header_id|>\n\n");
                        put_json_string(o, m[i].content);
                } else {
                        put(o, "<|start_header_id|>");
                        put(o, m[i].role);
                        put(o, "<|end_header_id|>\n\n");
                        put_trim(o, m[i].content);
                }
                put(o, "<|eot_id|>");
        }
        if (add_gen)
                put(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static bool role_is_basic(const ChatMessage *m)
{
        return role_is(m, "system") || role_is(m, "user") || role_is(m, "assistant");
}

static void put_chatml_turn(Out *o, const char *role, const char *content)
{
        put(o, "<|im_start|>");
        put(o, role);
        put(o, "\n");
        put(o, content);
        put(o, "<|im_end|>\n");
}

static void render_qwen(Out *o, const ChatMessage *m, size_t n, bool add_gen, bool v25)
{
        const char *dflt = v25
                ? "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
                : "You are a helpful assistant.";

        /* Qwen2 adds the default inside its message loop, so not for an empty one */
        if ((n > 0 || v25) && !(n > 0 && role_is(&m[0], "system")))
                put_chatml_turn(o, "system", dflt);
        for (size_t i = 0; i < n; i++) {
                if (v25 && role_is(&m[i], "tool")) {
                        /* consecutive tool results share one user turn */
                        if (i == 0 || !role_is(&m[i - 1], "tool"))
                                put(o, "<|im_start|>user");
                        put(o, "\n<tool_response>\n");
                        put(o, m[i].content);
                        put(o, "\n</tool_response>");
                        if (i + 1 == n || !role_is(&m[i + 1], "tool"))
                                put(o, "<|im_end|>\n");
                } else if (!v25 || role_is_basic(&m[i]))
                        put_chatml_turn(o, m[i].role, m[i].content);
        }
        if (add_gen)
                put(o, "<|im_start|>assistant\n");
}

int chat_template_apply(ChatTemplateKind k, const ChatMessage *msgs, size_t n,
                        bool add_generation_prompt, const char *bos_text, const char *eos_text,
                        char **ret)
{
        Out o = {};
        const char *bos = strempty(bos_text), *eos = strempty(eos_text);

        if ((unsigned)k >= _CHAT_TEMPLATE_MAX || (!msgs && n > 0) || !ret)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!msgs[i].role || !msgs[i].content)
                        return -EINVAL;

        switch (k) {
        case CHAT_TEMPLATE_LLAMA2:
                render_llama2(&o, msgs, n, bos, eos);
                break;
        case CHAT_TEMPLATE_LLAMA3:
                put(&o, bos);
                for (size_t i = 0; i < n; i++) {
                        put(&o, "<|start_header_id|>");
                        put(&o, msgs[i].role);
                        put(&o, "<|end_header_id|>\n\n");
                        put_trim(&o, msgs[i].content);
                        put(&o, "<|eot_id|>");
                }
                if (add_generation_prompt)
                        put(&o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
                break;
        case CHAT_TEMPLATE_LLAMA31:
                render_llama31(&o, msgs, n, add_generation_prompt, bos, "26 Jul 2024");
                break;
        case CHAT_TEMPLATE_LLAMA32: {
                /* strftime's %b follows the locale; the template's is English */
                static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
                char date[32];
                time_t now = time(NULL);
                struct tm tm;
                if (!localtime_r(&now, &tm))
                        return -EINVAL;
                snprintf(date, sizeof(date), "%02d %s %04d", tm.tm_mday, months[tm.tm_mon % 12],
                         tm.tm_year + 1900);
                render_llama31(&o, msgs, n, add_generation_prompt, bos, date);
                break;
        }
        case CHAT_TEMPLATE_QWEN2:
        case CHAT_TEMPLATE_QWEN25:
                render_qwen(&o, msgs, n, add_generation_prompt, k == CHAT_TEMPLATE_QWEN25);
                break;
        case CHAT_TEMPLATE_CHATML:
                for (size_t i = 0; i < n; i++) {
                        put(&o, "<|im_start|>");
                        put(&o, msgs[i].role);
                        put(&o, "\n");
                        put(&o, msgs[i].content);
                        put(&o, "<|im_end|>\n");
                }
                if (add_generation_prompt)
                        put(&o, "<|im_start|>assistant\n");
                break;
        case CHAT_TEMPLATE_MISTRAL:
                render_mistral(&o, msgs, n, bos, eos);
                break;
        case CHAT_TEMPLATE_GEMMA:
                render_gemma(&o, msgs, n, add_generation_prompt, bos);
                break;
        case CHAT_TEMPLATE_PHI3:
                for (size_t i = 0; i < n; i++) {
                        if (!role_is_basic(&msgs[i]))
                                continue;
                        put(&o, "<|");
                        put(&o, msgs[i].role);
                        put(&o, "|>\n");
                        put(&o, msgs[i].content);
                        put(&o, "<|end|>\n");
                }
                put(&o, add_generation_prompt ? "<|assistant|>\n" : eos);
                break;
        case CHAT_TEMPLATE_ZEPHYR:
                for (size_t i = 0; i < n; i++) {
                        if (!role_is_basic(&msgs[i]))
                                continue;
                        put(&o, "<|");
                        put(&o, msgs[i].role);
                        put(&o, "|>\n");
                        put(&o, msgs[i].content);
                        put(&o, eos);
                        put(&o, "\n");
                }
                if (add_generation_prompt && n > 0)
                        put(&o, "<|assistant|>\n");
                break;
        default:
                return -EINVAL;
        }
        if (o.r >= 0)
                o.r = buf_append(&o.b, "", 1);
        if (o.r < 0) {
                buf_done(&o.b);
                return o.r;
        }
        {
                char *s = strdup((const char *)buf_head(&o.b));
                buf_done(&o.b);
                if (!s)
                        return -ENOMEM;
                *ret = s;
        }
        return 0;
}
