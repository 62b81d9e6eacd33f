/* sw_conv — construction, copy and release of conversations (see sw_conv.h). */
#include "sw_conv.h"

#include "sw_err.h"

#include <stdlib.h>
#include <string.h>

void sw_conv_init(struct sw_conv *c) {
    memset(c, 0, sizeof *c);
    c->kto_label = SW_KTO_NONE;
}

static void turn_release(struct sw_turn *t) {
    free(t->content);
    free(t->reasoning);
    for (size_t i = 0; i < t->n_tool_calls; i++) {
        free(t->tool_calls[i].name);
        free(t->tool_calls[i].arguments);
    }
    free(t->tool_calls);
    memset(t, 0, sizeof *t);
}

void sw_conv_release(struct sw_conv *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_turns; i++)
        turn_release(&c->turns[i]);
    free(c->turns);
    free(c->system);
    free(c->rejected);
    free(c->text);
    sw_conv_init(c);
}

int sw_conv_set_str(char **slot, const char *s) {
    char *copy = NULL;
    if (s && !(copy = strdup(s))) return sw_err_set(SW_ENOMEM, "out of memory");
    free(*slot);
    *slot = copy;
    return 0;
}

int sw_conv_add_n(struct sw_conv *c, enum sw_role role, const char *content, size_t len) {
    if (c->n_turns == c->cap_turns) {
        size_t cap = c->cap_turns ? c->cap_turns * 2 : 4;
        struct sw_turn *t = realloc(c->turns, cap * sizeof *t);
        if (!t) return sw_err_set(SW_ENOMEM, "out of memory");
        c->turns = t;
        c->cap_turns = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return sw_err_set(SW_ENOMEM, "out of memory");
    if (len) memcpy(copy, content, len);
    copy[len] = '\0';
    struct sw_turn *t = &c->turns[c->n_turns++];
    memset(t, 0, sizeof *t);
    t->role = role;
    t->content = copy;
    t->loss = -1;
    return 0;
}

int sw_conv_add(struct sw_conv *c, enum sw_role role, const char *content) {
    if (!content) content = "";
    return sw_conv_add_n(c, role, content, strlen(content));
}

struct sw_turn *sw_conv_last(struct sw_conv *c) {
    return c->n_turns ? &c->turns[c->n_turns - 1] : NULL;
}

int sw_turn_add_tool_call(struct sw_turn *t, const char *name, const char *arguments) {
    struct sw_tool_call *tc = realloc(t->tool_calls, (t->n_tool_calls + 1) * sizeof *tc);
    if (!tc) return sw_err_set(SW_ENOMEM, "out of memory");
    t->tool_calls = tc;
    struct sw_tool_call *n = &tc[t->n_tool_calls];
    n->name = strdup(name ? name : "");
    n->arguments = strdup(arguments ? arguments : "{}");
    if (!n->name || !n->arguments) {
        free(n->name);
        free(n->arguments);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    t->n_tool_calls++;
    return 0;
}

const char *sw_role_name(enum sw_role r) {
    switch (r) {
    case SW_ROLE_USER: return "user";
    case SW_ROLE_ASSISTANT: return "assistant";
    case SW_ROLE_TOOL: return "tool";
    case SW_ROLE_SYSTEM: return "system";
    }
    return "?";
}

long sw_conv_last_user(const struct sw_conv *c) {
    for (size_t i = c->n_turns; i > 0; i--)
        if (c->turns[i - 1].role == SW_ROLE_USER) return (long)(i - 1);
    return -1;
}

int sw_conv_copy(struct sw_conv *dst, const struct sw_conv *src) {
    sw_conv_init(dst);
    int rc = 0;
    if ((rc = sw_conv_set_str(&dst->system, src->system)) < 0) goto fail;
    if ((rc = sw_conv_set_str(&dst->rejected, src->rejected)) < 0) goto fail;
    if ((rc = sw_conv_set_str(&dst->text, src->text)) < 0) goto fail;
    dst->kto_label = src->kto_label;
    for (size_t i = 0; i < src->n_turns; i++) {
        const struct sw_turn *s = &src->turns[i];
        if ((rc = sw_conv_add(dst, s->role, s->content)) < 0) goto fail;
        struct sw_turn *d = sw_conv_last(dst);
        d->loss = s->loss;
        if ((rc = sw_conv_set_str(&d->reasoning, s->reasoning)) < 0) goto fail;
        for (size_t k = 0; k < s->n_tool_calls; k++)
            if ((rc = sw_turn_add_tool_call(d, s->tool_calls[k].name, s->tool_calls[k].arguments)) <
                0)
                goto fail;
    }
    return 0;
fail:
    sw_conv_release(dst);
    return rc;
}
