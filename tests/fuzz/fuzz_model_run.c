/* fuzz_model_run.c -- the model-run loader of issue 11 (src/model/run.h):
 * vLLM JSONL log-prob files and safetensors log-prob/logit files.  Every
 * refusal must be exit 3 or 4 with one printable line. */
#include "model/run.h"
#include "fuzz.h"

static int fuzz_one(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".jsonl");
    mxv_tokens *toks = mxv_tokens_new();
    mxv_run run;
    char err[1024] = "";
    if (!toks)
        return 0;
    int rc = mxv_run_load(path, toks, 0, &run, err, sizeof err);
    if (rc != 0) {
        if ((rc != 3 && rc != 4) || !err[0])
            abort();
        for (const char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20)
                abort();
    }
    mxv_run_free(&run); /* after a refusal too, as the callers do */
    mxv_tokens_free(toks);
    return 0;
}
