/* SPDX-License-Identifier: GPL-2.0-or-later */
/* GGUF reader: any bytes must be either accepted with every tensor inside the buffer, or
 * refused with an error message; and an accepted file must survive the model loader. */
#include <stdlib.h>
#include <string.h>

#include "fuzz-check.h"
#include "engine/gguf.h"
#include "engine/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        GgufFile *f = NULL;
        char *error = NULL;
        int r;

        r = gguf_parse(data, size, &f, &error);
        if (r < 0) {
                CHECK(error); /* every refusal explains itself */
                free(error);
                return 0;
        }
        for (size_t i = 0; i < f->n_tensors; i++) {
                const GgufTensor *t = &f->tensors[i];
                const uint8_t *p = t->data;
                CHECK(p >= data && p + t->size <= data + size);
                CHECK(gguf_find_tensor(f, t->name) == t);
        }
        for (size_t i = 0; i < f->n_kv; i++) {
                const GgufKV *kv = &f->kv[i];
                CHECK(gguf_find_kv(f, kv->key) == kv);
                if (kv->type == GGUF_TYPE_ARRAY && kv->arr_type == GGUF_TYPE_STRING) {
                        const char **strs;
                        size_t *lens, n;
                        if (gguf_get_str_array(f, kv->key, &strs, &lens, &n) >= 0) {
                                for (size_t k = 0; k < n; k++)
                                        CHECK((const uint8_t *)strs[k] + lens[k] <= data + size);
                                free(strs);
                                free(lens);
                        }
                }
        }
        Model *m = NULL;
        r = model_load_gguf(f, &m, &error);
        free(error);
        if (r >= 0)
                model_free(m); /* frees f */
        else
                gguf_free(f);
        return 0;
}
