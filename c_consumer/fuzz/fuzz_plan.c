/* libFuzzer target: plan_parse. Checks the parser's promises on every plan it accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"

#define CHECK(cond) \
    do {            \
        if (!(cond)) abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256];
    Plan *plan = NULL;
    int rc = plan_parse((const char *)data, size, &plan, err, sizeof err);
    if (rc != 0) {
        CHECK(plan == NULL && err[0] != '\0' && memchr(err, '\0', sizeof err));
        return 0;
    }
    CHECK(plan != NULL);
    CHECK(plan->intra_threads >= 0 && plan->inter_threads >= 0);
    for (size_t i = 0; i < plan->n_jobs; i++) {
        const PlanJob *j = &plan->jobs[i];
        CHECK(j->id && j->id[0]);
        for (size_t k = 0; k < i; k++) CHECK(strcmp(plan->jobs[k].id, j->id) != 0);
        CHECK(j->repeat >= 1);
        if (j->error) continue;
        /* A valid job is complete: what the runner relies on without checking again. */
        CHECK(j->model && j->model[0]);
        CHECK(j->format == PLAN_FORMAT_FROZEN || j->format == PLAN_FORMAT_SAVED_MODEL);
        CHECK(j->n_outputs >= 1);
        if (j->format == PLAN_FORMAT_FROZEN) CHECK(!j->tags && !j->signature);
        if (j->tags) CHECK(j->tags[0] != ',' && j->tags[strlen(j->tags) - 1] != ',' && !strstr(j->tags, ",,"));
        for (size_t k = 0; k < j->n_inputs; k++)
            CHECK(j->inputs[k].key[0] && j->inputs[k].tensor[0] && j->inputs[k].file[0]);
        for (size_t k = 0; k < j->n_outputs; k++)
            CHECK(j->outputs[k].key[0] && j->outputs[k].tensor[0] && j->outputs[k].file[0]);
    }
    plan_free(plan);
    return 0;
}
