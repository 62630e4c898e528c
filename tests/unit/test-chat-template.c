/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <check.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "engine/chat-template.h"

/* Excerpts of the templates shipped in the models' tokenizer_config.json. */
static const struct {
        const char *src;
        ChatTemplateKind kind;
} known[] = {
        {"{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
         "{% set system_message = messages[0]['content'] %}{% endif %}{% for message in "
         "loop_messages %}"
         "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + "
         "system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% endif %}"
         "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% endfor %}",
         CHAT_TEMPLATE_LLAMA2},
        {"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
         "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] "
         "| "
         "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
         "{% endif %}{{ content }}{% endfor %}",
         CHAT_TEMPLATE_LLAMA3},
        {"{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
         "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
         "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
         "{% endfor %}",
         CHAT_TEMPLATE_QWEN2},
        {"{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + "
         "messages[0]['content'] + "
         "'<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba "
         "Cloud. "
         "You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}",
         CHAT_TEMPLATE_QWEN25},
        {"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
         "message['content'] + "
         "'<|im_end|>' + '\\n'}}{% endfor %}",
         CHAT_TEMPLATE_CHATML},
        {"{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
         "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' "
         "%}"
         "{{ message['content'] + eos_token}}{% endif %}{% endfor %}",
         CHAT_TEMPLATE_MISTRAL},
        {"{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'assistant') %}"
         "{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
         "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
         "{% endfor %}",
         CHAT_TEMPLATE_GEMMA},
        {"{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + "
         "message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + "
         "message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}"
         "{{ '<|assistant|>\\n' }}{% endif %}",
         CHAT_TEMPLATE_PHI3},
        {"{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + "
         "message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n"
         "{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n{% endif %}\n{% endfor %}",
         CHAT_TEMPLATE_ZEPHYR},
        {"{{- bos_token }}{%- if not date_string is defined %}{%- set date_string = \"26 Jul "
         "2024\" %}"
         "{%- endif %}{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}"
         "{{- \"Cutting Knowledge Date: December 2023\\n\" }}",
         CHAT_TEMPLATE_LLAMA31},
        {"{%- if strftime_now is defined %}{%- set date_string = strftime_now(\"%d %b %Y\") %}"
         "{%- endif %}{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}"
         "{{- \"Cutting Knowledge Date: December 2023\\n\" }}",
         CHAT_TEMPLATE_LLAMA32},
        {"chatml", CHAT_TEMPLATE_CHATML},
        {"llama3.2", CHAT_TEMPLATE_LLAMA32},
        {"gemma", CHAT_TEMPLATE_GEMMA},
        {"mistral-v3", CHAT_TEMPLATE_MISTRAL},
};

START_TEST(test_detect)
{
        ChatTemplateKind k;

        for (size_t i = 0; i < ELEMENTSOF(known); i++) {
                k = _CHAT_TEMPLATE_MAX;
                ck_assert_int_eq(chat_template_detect(known[i].src, &k), 1);
                ck_assert_msg(k == known[i].kind, "template %zu: got %s", i, chat_template_name(k));
        }
        k = CHAT_TEMPLATE_GEMMA;
        ck_assert_int_eq(chat_template_detect("{{ messages }} something else", &k), 0);
        ck_assert_int_eq(k, CHAT_TEMPLATE_DEFAULT);
        k = CHAT_TEMPLATE_GEMMA;
        ck_assert_int_eq(chat_template_detect(NULL, &k), 0);
        ck_assert_int_eq(k, CHAT_TEMPLATE_CHATML);
        ck_assert_int_eq(chat_template_detect("", &k), 0);
        ck_assert_int_eq(chat_template_detect("x", NULL), -EINVAL);
}
END_TEST

START_TEST(test_default_system)
{
        char *out = NULL;

        /* SmolLM2's template, newlines raw inside the literal */
        ck_assert_int_eq(
                chat_template_default_system(
                        "{% for message in messages %}{% if loop.first and messages[0]['role'] "
                        "!= 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant "
                        "named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}",
                        &out),
                1);
        ck_assert_str_eq(out,
                         "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
        out = mfree(out);
        /* escaped newline and quote */
        ck_assert_int_eq(chat_template_default_system(
                                 "{{ '<|im_start|>system\\nIt\\'s me.<|im_end|>' }}", &out),
                         1);
        ck_assert_str_eq(out, "It's me.");
        out = mfree(out);
        /* the generic ChatML template builds the system turn from the message */
        ck_assert_int_eq(
                chat_template_default_system("{{'<|im_start|>' + message['role'] + '\\n'}}", &out),
                0);
        ck_assert_int_eq(
                chat_template_default_system("'<|im_start|>system\\n' + x + '<|im_end|>'", &out),
                0);
        ck_assert_int_eq(chat_template_default_system("<|im_start|>system\\nunterminated", &out),
                         0);
        ck_assert_ptr_null(out);
        ck_assert_int_eq(chat_template_default_system(NULL, &out), -EINVAL);
}
END_TEST

START_TEST(test_names)
{
        ChatTemplateKind k;

        for (unsigned i = 0; i < _CHAT_TEMPLATE_MAX; i++) {
                const char *n = chat_template_name(i);
                ck_assert_ptr_nonnull(n);
                ck_assert_int_eq(chat_template_from_name(n, &k), 0);
                ck_assert_uint_eq(k, i);
        }
        ck_assert_ptr_null(chat_template_name(_CHAT_TEMPLATE_MAX));
        ck_assert_ptr_null(chat_template_name((ChatTemplateKind)-1));
        ck_assert_int_eq(chat_template_from_name("jinja", &k), -EINVAL);
        ck_assert_int_eq(chat_template_from_name(NULL, &k), -EINVAL);
}
END_TEST

static const ChatMessage conv[] = {
        {"system", "You are terse."},
        {"user", " Hi there "},
        {"assistant", "Hello! "},
        {"user", "Bye"},
};

static void check_render(ChatTemplateKind k, const ChatMessage *m, size_t n, bool gen,
                         const char *bos, const char *eos, const char *want)
{
        _cleanup_free_ char *out = NULL;

        ck_assert_int_eq(chat_template_apply(k, m, n, gen, bos, eos, &out), 0);
        ck_assert_str_eq(out, want);
}

START_TEST(test_render)
{
        check_render(CHAT_TEMPLATE_LLAMA2, conv, 4, true, "<s>", "</s>",
                     "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\n Hi there [/INST] Hello! </s>"
                     "<s>[INST] Bye [/INST]");
        check_render(CHAT_TEMPLATE_LLAMA2, conv + 1, 1, true, "<s>", "</s>",
                     "<s>[INST] Hi there [/INST]");
        check_render(CHAT_TEMPLATE_LLAMA3, conv, 4, true, "<|begin_of_text|>", "<|end_of_text|>",
                     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are "
                     "terse.<|eot_id|>"
                     "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                     "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                     "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
                     "<|start_header_id|>assistant<|end_header_id|>\n\n");
        check_render(CHAT_TEMPLATE_CHATML, conv, 4, true, "<s>", "</s>",
                     "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\n Hi there "
                     "<|im_end|>\n"
                     "<|im_start|>assistant\nHello! <|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
                     "<|im_start|>assistant\n");
        check_render(CHAT_TEMPLATE_CHATML, conv + 1, 1, false, NULL, NULL,
                     "<|im_start|>user\n Hi there <|im_end|>\n");
        check_render(CHAT_TEMPLATE_MISTRAL, conv, 4, true, "<s>", "</s>",
                     "<s>[INST]  Hi there [/INST] Hello!</s>[INST] You are terse.\n\nBye[/INST]");
        check_render(
                CHAT_TEMPLATE_GEMMA, conv, 4, true, "<bos>", "<eos>",
                "<bos><start_of_turn>user\nYou are terse.\n\nHi there<end_of_turn>\n"
                "<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n"
                "<start_of_turn>model\n");
        check_render(CHAT_TEMPLATE_PHI3, conv, 4, true, "<s>", "<|endoftext|>",
                     "<|system|>\nYou are terse.<|end|>\n<|user|>\n Hi there "
                     "<|end|>\n<|assistant|>\nHello! <|end|>\n"
                     "<|user|>\nBye<|end|>\n<|assistant|>\n");
        check_render(CHAT_TEMPLATE_PHI3, conv + 3, 1, false, "<s>", "<|endoftext|>",
                     "<|user|>\nBye<|end|>\n<|endoftext|>");
        check_render(CHAT_TEMPLATE_ZEPHYR, conv, 2, true, "<s>", "</s>",
                     "<|system|>\nYou are terse.</s>\n<|user|>\n Hi there </s>\n<|assistant|>\n");
        check_render(CHAT_TEMPLATE_CHATML, NULL, 0, true, NULL, NULL, "<|im_start|>assistant\n");
        check_render(CHAT_TEMPLATE_LLAMA31, conv + 1, 1, true, "<|begin_of_text|>", NULL,
                     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                     "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
                     "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                     "<|start_header_id|>assistant<|end_header_id|>\n\n");
        {
                const ChatMessage tool[] = {{"system", " S "}, {"tool", "a\"b\n\x01"}};
                check_render(CHAT_TEMPLATE_LLAMA31, tool, 2, false, "", NULL,
                             "<|start_header_id|>system<|end_header_id|>\n\n"
                             "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul "
                             "2024\n\nS<|eot_id|>"
                             "<|start_header_id|>ipython<|end_header_id|>\n\n\"a\\\"b\\n\\u0001\"<|"
                             "eot_id|>");
        }
        {
                /* today's date: "DD Mon YYYY" after "Today Date: " */
                _cleanup_free_ char *out = NULL;
                const char *d;
                ck_assert_int_eq(chat_template_apply(CHAT_TEMPLATE_LLAMA32, conv + 1, 1, false, "",
                                                     NULL, &out),
                                 0);
                d = strstr(out, "Today Date: ");
                ck_assert_ptr_nonnull(d);
                d += strlen("Today Date: ");
                ck_assert(d[0] >= '0' && d[0] <= '3' && d[2] == ' ' && d[6] == ' ' &&
                          d[11] == '\n');
        }
        check_render(CHAT_TEMPLATE_QWEN2, conv + 3, 1, true, NULL, NULL,
                     "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                     "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n");
        check_render(CHAT_TEMPLATE_QWEN2, NULL, 0, true, NULL, NULL, "<|im_start|>assistant\n");
        check_render(CHAT_TEMPLATE_QWEN25, conv, 1, false, NULL, NULL,
                     "<|im_start|>system\nYou are terse.<|im_end|>\n");
        {
                const ChatMessage tool[] = {
                        {"user", "q"}, {"tool", "1"}, {"tool", "2"}, {"user", "r"}};
                check_render(
                        CHAT_TEMPLATE_QWEN25, tool, 4, false, NULL, NULL,
                        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a "
                        "helpful "
                        "assistant.<|im_end|>\n<|im_start|>user\nq<|im_end|>\n<|im_start|>user\n"
                        "<tool_response>\n1\n</tool_response>\n<tool_response>\n2\n</tool_response>"
                        "<|im_end|>\n<|im_start|>user\nr<|im_end|>\n");
        }
        /* Mistral keeps the system text only when a user message ends the conversation */
        check_render(CHAT_TEMPLATE_MISTRAL, conv, 3, false, "<s>", "</s>",
                     "<s>[INST]  Hi there [/INST] Hello!</s>");
        /* roles the family's template does not know are dropped (phi3, zephyr) or kept */
        {
                const ChatMessage tool[] = {{"user", "q"}, {"tool", "42"}};
                check_render(CHAT_TEMPLATE_PHI3, tool, 2, true, NULL, "</s>",
                             "<|user|>\nq<|end|>\n<|assistant|>\n");
                check_render(CHAT_TEMPLATE_ZEPHYR, tool, 2, false, NULL, "</s>",
                             "<|user|>\nq</s>\n");
                check_render(CHAT_TEMPLATE_CHATML, tool, 2, false, NULL, NULL,
                             "<|im_start|>user\nq<|im_end|>\n<|im_start|>tool\n42<|im_end|>\n");
        }
}
END_TEST

START_TEST(test_invalid)
{
        char *out = NULL;
        const ChatMessage bad[] = {{"user", NULL}};

        ck_assert_int_eq(chat_template_apply(_CHAT_TEMPLATE_MAX, conv, 1, true, NULL, NULL, &out),
                         -EINVAL);
        ck_assert_int_eq(chat_template_apply(CHAT_TEMPLATE_CHATML, NULL, 1, true, NULL, NULL, &out),
                         -EINVAL);
        ck_assert_int_eq(chat_template_apply(CHAT_TEMPLATE_CHATML, bad, 1, true, NULL, NULL, &out),
                         -EINVAL);
        ck_assert_int_eq(chat_template_apply(CHAT_TEMPLATE_CHATML, conv, 1, true, NULL, NULL, NULL),
                         -EINVAL);
        ck_assert_ptr_null(out);
}
END_TEST

static Suite *chat_template_suite(void)
{
        Suite *s = suite_create("chat-template");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_detect);
        tcase_add_test(tc, test_names);
        tcase_add_test(tc, test_default_system);
        tcase_add_test(tc, test_render);
        tcase_add_test(tc, test_invalid);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(chat_template_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
