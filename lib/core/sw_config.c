/* sw_config — typed option tables filled from defaults, a YAML file and command-line overrides.
 *
 * Precedence is fixed (defaults < --config file < command line) whatever the order of the
 * arguments, so `--config a.yaml --lr 1` and `--lr 1 --config a.yaml` mean the same. Every
 * error is SW_EUSAGE with the key named and, for unknown keys, the closest valid key. */
#include "sw_config.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define KEY_MAX 128

/* Keys are compared with '-' and '_' treated alike, so --max-length == --max_length. */
static void key_normalize(const char *in, size_t n, char *out) {
    size_t i = 0;
    for (; i < n && i < KEY_MAX - 1 && in[i]; i++)
        out[i] = in[i] == '-' ? '_' : in[i];
    out[i] = '\0';
}

static const struct sw_opt *opt_find(const struct sw_opt *opts, const char *key) {
    for (const struct sw_opt *o = opts; o && o->key; o++)
        if (strcmp(o->key, key) == 0 || (o->alias && strcmp(o->alias, key) == 0)) return o;
    return NULL;
}

static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return (size_t)-1;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *sw_config_suggest(const struct sw_opt *opts, const char *key) {
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (const struct sw_opt *o = opts; o && o->key; o++) {
        size_t d = edit_distance(key, o->key);
        /* A key that contains the typed word (or the reverse) is a good guess too. */
        if (strlen(key) >= 3 && (strstr(o->key, key) || strstr(key, o->key))) d = d < 3 ? d : 3;
        if (d < best_d) {
            best_d = d;
            best = o->key;
        }
    }
    size_t limit = strlen(key) / 3 + 2;
    return best_d <= limit ? best : NULL;
}

static int unknown_key(const struct sw_opt *opts, const char *key, const char *where) {
    const char *s = sw_config_suggest(opts, key);
    if (s) return sw_err_set(SW_EUSAGE, "%s: unknown key '%s' (did you mean '%s'?)", where, key, s);
    return sw_err_set(SW_EUSAGE, "%s: unknown key '%s' (see --help)", where, key);
}

static int parse_bool(const char *v, int *out) {
    static const char *const yes[] = {"true", "1", "yes", "on", "True", "TRUE", "Yes", NULL};
    static const char *const no[] = {"false", "0", "no", "off", "False", "FALSE", "No", NULL};
    for (int i = 0; yes[i]; i++)
        if (strcmp(v, yes[i]) == 0) return *out = 1, 0;
    for (int i = 0; no[i]; i++)
        if (strcmp(v, no[i]) == 0) return *out = 0, 0;
    return -1;
}

static int choice_ok(const char *choices, const char *v) {
    size_t n = strlen(v);
    for (const char *p = choices; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0) return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

/* "[1, 1048576]" for an integer option (the bounds are doubles in the table, but %g would print
 * 2^30 as 1.07374e+09), "[0, 0.999]" for a float one. */
static void format_range(const struct sw_opt *o, char *buf, size_t cap) {
    if (o->type == SW_OPT_INT)
        snprintf(buf, cap, "[%lld, %lld]", (long long)o->min, (long long)o->max);
    else
        snprintf(buf, cap, "[%g, %g]", o->min, o->max);
}

static int check_range(const struct sw_opt *o, double x, const char *v, const char *where) {
    if (o->min < o->max && (x < o->min || x > o->max)) {
        char range[80];
        format_range(o, range, sizeof range);
        return sw_err_set(SW_EUSAGE, "%s: value %s for '%s' is out of range %s", where, v, o->key,
                          range);
    }
    return 0;
}

static int set_string(char **slot, const char *v) {
    char *copy = v ? strdup(v) : NULL;
    if (v && !copy) return sw_err_set(SW_ENOMEM, "out of memory");
    free(*slot);
    *slot = copy;
    return 0;
}

/* Parse value for one option and store it; where names the source for messages. */
static int opt_assign(const struct sw_opt *o, void *dst, const char *v, const char *where) {
    void *slot = (char *)dst + o->offset;
    char *end;
    switch (o->type) {
    case SW_OPT_BOOL: {
        int b;
        if (parse_bool(v, &b) < 0)
            return sw_err_set(SW_EUSAGE, "%s: '%s' expects true or false, got '%s'", where, o->key,
                              v);
        *(int *)slot = b;
        return 0;
    }
    case SW_OPT_INT: {
        errno = 0;
        long long x = strtoll(v, &end, 0);
        if (errno || end == v || *end) {
            /* Accept integral floats such as 1e3 (YAML users write them). */
            double d = strtod(v, &end);
            if (end == v || *end || d != floor(d) || fabs(d) > 9.0e15)
                return sw_err_set(SW_EUSAGE, "%s: '%s' expects an integer, got '%s'", where, o->key,
                                  v);
            x = (long long)d;
        }
        SW_TRY(check_range(o, (double)x, v, where));
        *(int64_t *)slot = x;
        return 0;
    }
    case SW_OPT_FLOAT: {
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x))
            return sw_err_set(SW_EUSAGE, "%s: '%s' expects a number, got '%s'", where, o->key, v);
        SW_TRY(check_range(o, x, v, where));
        *(double *)slot = x;
        return 0;
    }
    case SW_OPT_CHOICE:
        if (!choice_ok(o->choices, v))
            return sw_err_set(SW_EUSAGE, "%s: '%s' must be one of %s, got '%s'", where, o->key,
                              o->choices, v);
        return set_string((char **)slot, v);
    case SW_OPT_STRING:
    case SW_OPT_LIST: return set_string((char **)slot, v);
    }
    return sw_err_set(SW_EINVAL, "%s: bad option type for '%s'", where, o->key);
}

int sw_config_set(const struct sw_opt *opts, void *dst, const char *key, const char *value,
                  const char *where) {
    char norm[KEY_MAX];
    key_normalize(key, strlen(key), norm);
    const struct sw_opt *o = opt_find(opts, norm);
    if (!o) return unknown_key(opts, norm, where);
    return opt_assign(o, dst, value, where);
}

int sw_config_defaults(const struct sw_opt *opts, void *dst) {
    for (const struct sw_opt *o = opts; o && o->key; o++) {
        void *slot = (char *)dst + o->offset;
        switch (o->type) {
        case SW_OPT_BOOL: *(int *)slot = 0; break;
        case SW_OPT_INT: *(int64_t *)slot = 0; break;
        case SW_OPT_FLOAT: *(double *)slot = 0; break;
        default: *(char **)slot = NULL; break;
        }
        if (o->def) SW_TRY(opt_assign(o, dst, o->def, "default"));
    }
    return 0;
}

void sw_config_release(const struct sw_opt *opts, void *dst) {
    if (!dst) return;
    for (const struct sw_opt *o = opts; o && o->key; o++) {
        if (o->type == SW_OPT_STRING || o->type == SW_OPT_CHOICE || o->type == SW_OPT_LIST) {
            char **slot = (char **)((char *)dst + o->offset);
            free(*slot);
            *slot = NULL;
        }
    }
}

/* ---- YAML: a flat mapping of key -> scalar, or key -> sequence of scalars (joined by ','). */

struct yaml_walk {
    yaml_parser_t parser;
    const char *name;
};

static int yaml_fail(struct yaml_walk *w, int line, const char *what) {
    return sw_err_set(SW_EUSAGE, "%s:%d: %s", w->name, line, what);
}

static int yaml_next(struct yaml_walk *w, yaml_event_t *ev) {
    if (!yaml_parser_parse(&w->parser, ev))
        return sw_err_set(SW_EUSAGE, "%s:%zu: YAML syntax error: %s", w->name,
                          w->parser.problem_mark.line + 1,
                          w->parser.problem ? w->parser.problem : "unknown");
    return 0;
}

/* Read a sequence of scalars after SEQUENCE_START into a comma-joined malloc'ed string. */
static int yaml_read_list(struct yaml_walk *w, char **out) {
    size_t cap = 64, len = 0;
    char *buf = malloc(cap);
    if (!buf) return sw_err_set(SW_ENOMEM, "out of memory");
    buf[0] = '\0';
    for (;;) {
        yaml_event_t ev;
        int rc = yaml_next(w, &ev);
        if (rc < 0) return free(buf), rc;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            int line = (int)ev.start_mark.line + 1;
            yaml_event_delete(&ev);
            free(buf);
            return yaml_fail(w, line, "lists may hold only plain values");
        }
        size_t n = ev.data.scalar.length;
        if (len + n + 2 > cap) {
            while (len + n + 2 > cap)
                cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb)
                return yaml_event_delete(&ev), free(buf), sw_err_set(SW_ENOMEM, "out of memory");
            buf = nb;
        }
        if (len) buf[len++] = ',';
        memcpy(buf + len, ev.data.scalar.value, n);
        len += n;
        buf[len] = '\0';
        yaml_event_delete(&ev);
    }
    *out = buf;
    return 0;
}

static int yaml_apply_pair(struct yaml_walk *w, const struct sw_opt *opts, void *dst,
                           yaml_event_t *key_ev) {
    char key[KEY_MAX], where[512];
    int line = (int)key_ev->start_mark.line + 1;
    key_normalize((const char *)key_ev->data.scalar.value, key_ev->data.scalar.length, key);
    snprintf(where, sizeof where, "%s:%d", w->name, line);
    yaml_event_t val;
    SW_TRY(yaml_next(w, &val));
    int rc = 0;
    const struct sw_opt *o = opt_find(opts, key);
    if (!o) {
        rc = unknown_key(opts, key, where);
    } else if (val.type == YAML_SCALAR_EVENT) {
        rc = opt_assign(o, dst, (const char *)val.data.scalar.value, where);
    } else if (val.type == YAML_SEQUENCE_START_EVENT && o->type == SW_OPT_LIST) {
        char *joined = NULL;
        rc = yaml_read_list(w, &joined);
        if (rc == 0) rc = opt_assign(o, dst, joined, where);
        free(joined);
    } else {
        rc = sw_err_set(SW_EUSAGE, "%s: '%s' expects a plain value, not a %s", where, key,
                        val.type == YAML_MAPPING_START_EVENT ? "mapping" : "list");
    }
    yaml_event_delete(&val);
    return rc;
}

static int yaml_walk_doc(struct yaml_walk *w, const struct sw_opt *opts, void *dst) {
    int in_map = 0;
    for (;;) {
        yaml_event_t ev;
        SW_TRY(yaml_next(w, &ev));
        int rc = 0, done = 0;
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_DOCUMENT_END_EVENT: break;
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_MAPPING_START_EVENT:
            if (in_map)
                rc = yaml_fail(w, (int)ev.start_mark.line + 1, "nested mappings are not options");
            in_map = 1;
            break;
        case YAML_MAPPING_END_EVENT: in_map = 0; break;
        case YAML_SCALAR_EVENT:
            if (!in_map) {
                /* An empty document parses as one empty plain scalar: accept it. */
                if (ev.data.scalar.length == 0) break;
                rc = yaml_fail(w, (int)ev.start_mark.line + 1,
                               "expected a mapping of option: value");
            } else {
                rc = yaml_apply_pair(w, opts, dst, &ev);
            }
            break;
        default:
            rc = yaml_fail(w, (int)ev.start_mark.line + 1, "expected a mapping of option: value");
        }
        yaml_event_delete(&ev);
        if (rc < 0) return rc;
        if (done) return 0;
    }
}

int sw_config_load_yaml_mem(const struct sw_opt *opts, void *dst, const char *text, size_t len,
                            const char *name) {
    struct yaml_walk w = {.name = name};
    if (!yaml_parser_initialize(&w.parser)) return sw_err_set(SW_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&w.parser, (const unsigned char *)text, len);
    int rc = yaml_walk_doc(&w, opts, dst);
    yaml_parser_delete(&w.parser);
    return rc;
}

int sw_config_load_yaml(const struct sw_opt *opts, void *dst, const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        sw_err_errno("cannot open config '%s'", path);
        return SW_EUSAGE;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > (16u << 20)) {
                fclose(fp), free(buf);
                return sw_err_set(SW_EUSAGE, "%s: config file larger than 16 MiB", path);
            }
            char *nb = realloc(buf, cap);
            if (!nb) return fclose(fp), free(buf), sw_err_set(SW_ENOMEM, "out of memory");
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, fp);
        len += n;
        if (n == 0) break;
    }
    int err = ferror(fp);
    fclose(fp);
    if (err) return free(buf), sw_err_set(SW_EUSAGE, "%s: read error", path);
    int rc = sw_config_load_yaml_mem(opts, dst, buf ? buf : "", len, path);
    free(buf);
    return rc;
}

/* ---- command line ---- */

static const char *type_name(const struct sw_opt *o) {
    switch (o->type) {
    case SW_OPT_BOOL: return "bool";
    case SW_OPT_INT: return "int";
    case SW_OPT_FLOAT: return "float";
    case SW_OPT_STRING: return "str";
    case SW_OPT_CHOICE: return "choice";
    case SW_OPT_LIST: return "list";
    }
    return "?";
}

void sw_config_print_help(const struct sw_cli *cli, FILE *out) {
    fprintf(out, "usage: %s\n", cli->usage);
    if (cli->summary) fprintf(out, "\n%s\n", cli->summary);
    if (cli->opts && cli->opts->key) {
        fprintf(out,
                "\noptions (--key value, --key=value, or key: value in --config FILE.yaml):\n");
        for (const struct sw_opt *o = cli->opts; o->key; o++) {
            fprintf(out, "  --%-28s %-6s %s\n", o->key, type_name(o), o->help ? o->help : "");
            fprintf(out, "  %-30s        default: %s", "", o->def ? o->def : "(unset)");
            if (o->type == SW_OPT_CHOICE) fprintf(out, "; one of %s", o->choices);
            if ((o->type == SW_OPT_INT || o->type == SW_OPT_FLOAT) && o->min < o->max) {
                char range[80];
                format_range(o, range, sizeof range);
                fprintf(out, "; range %s", range);
            }
            if (o->alias) fprintf(out, "; also --%s", o->alias);
            fprintf(out, "\n");
        }
    }
    fprintf(out,
            "\ncommon options:\n"
            "  --config FILE.yaml    read options from a YAML mapping (command line wins)\n"
            "  -q, --quiet           only errors on stderr    -v, --verbose  more detail\n"
            "  -h, --help            this text                --version      print the version\n"
            "environment: SW_LOG=error|warn|info|debug|trace, SW_NUM_THREADS=N, SW_PROGRESS=0|1\n");
}

void sw_print_version(const char *tool, FILE *out) {
    fprintf(out, "%s %s (%s)\n", tool, SW_VERSION, SW_GIT_REV);
}

static int is_flag(const char *a) {
    return a[0] == '-' && a[1] != '\0';
}

/* First pass: help, version, verbosity and the config file, which must act before overrides. */
static int scan_common(const struct sw_cli *cli, int argc, char **argv, const char **config) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) break;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            sw_config_print_help(cli, stdout);
            return 1;
        }
        if (strcmp(a, "--version") == 0) {
            sw_print_version(cli->tool, stdout);
            return 1;
        }
        if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0)
            sw_log_set_level(SW_LOG_ERROR);
        else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            enum sw_log_level lv = sw_log_get_level();
            sw_log_set_level(lv < SW_LOG_TRACE ? lv + 1 : lv);
        } else if (strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) return sw_err_set(SW_EUSAGE, "--config needs a file name");
            *config = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            *config = a + 9;
        }
    }
    return 0;
}

static int is_common_flag(const char *a, int *takes_value) {
    *takes_value = strcmp(a, "--config") == 0;
    return *takes_value || strncmp(a, "--config=", 9) == 0 || strcmp(a, "-q") == 0 ||
           strcmp(a, "--quiet") == 0 || strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0;
}

/* Apply one "--key[=value]" at argv[*i], consuming a following value when needed. */
static int apply_override(const struct sw_cli *cli, void *dst, int argc, char **argv, int *i) {
    const char *a = argv[*i] + 2;
    const char *eq = strchr(a, '=');
    char key[KEY_MAX], where[KEY_MAX + 8];
    key_normalize(a, eq ? (size_t)(eq - a) : strlen(a), key);
    snprintf(where, sizeof where, "--%s", key);
    const struct sw_opt *o = opt_find(cli->opts, key);
    if (!o && strncmp(key, "no_", 3) == 0 && !eq) {
        const struct sw_opt *neg = opt_find(cli->opts, key + 3);
        if (neg && neg->type == SW_OPT_BOOL) return opt_assign(neg, dst, "false", where);
    }
    if (!o) return unknown_key(cli->opts, key, where);
    if (eq) return opt_assign(o, dst, eq + 1, where);
    if (o->type == SW_OPT_BOOL) {
        int b;
        if (*i + 1 < argc && parse_bool(argv[*i + 1], &b) == 0)
            return opt_assign(o, dst, argv[++*i], where);
        return opt_assign(o, dst, "true", where);
    }
    if (*i + 1 >= argc) return sw_err_set(SW_EUSAGE, "%s needs a value", where);
    return opt_assign(o, dst, argv[++*i], where);
}

int sw_cli_parse(const struct sw_cli *cli, void *dst, int argc, char **argv, char ***pos,
                 int *npos) {
    const char *config = NULL;
    *pos = NULL;
    *npos = 0;
    int rc = scan_common(cli, argc, argv, &config);
    if (rc != 0) return rc;
    rc = sw_config_defaults(cli->opts, dst);
    if (rc == 0 && config) rc = sw_config_load_yaml(cli->opts, dst, config);
    if (rc < 0) {
        sw_config_release(cli->opts, dst);
        return rc;
    }
    char **list = calloc((size_t)argc + 1, sizeof *list);
    if (!list) return sw_err_set(SW_ENOMEM, "out of memory");
    int n = 0, only_pos = 0;
    for (int i = 1; i < argc && rc == 0; i++) {
        const char *a = argv[i];
        int takes;
        if (only_pos || !is_flag(a)) {
            list[n++] = argv[i];
        } else if (strcmp(a, "--") == 0) {
            only_pos = 1;
        } else if (is_common_flag(a, &takes)) {
            i += takes;
        } else if (a[1] != '-') {
            rc = sw_err_set(SW_EUSAGE, "unknown option '%s' (see %s%s%s --help)", a, cli->tool,
                            cli->command ? " " : "", cli->command ? cli->command : "");
        } else {
            rc = apply_override(cli, dst, argc, argv, &i);
        }
    }
    if (rc == 0 && n < cli->min_pos)
        rc = sw_err_set(SW_EUSAGE, "missing argument; usage: %s", cli->usage);
    if (rc == 0 && cli->max_pos >= 0 && n > cli->max_pos)
        rc = sw_err_set(SW_EUSAGE, "unexpected argument '%s'; usage: %s", list[cli->max_pos],
                        cli->usage);
    if (rc < 0) {
        free(list);
        sw_config_release(cli->opts, dst);
        return rc;
    }
    *pos = list;
    *npos = n;
    return 0;
}

/* ---- tools made of subcommands ---- */

static void suite_usage(const struct sw_cli_suite *s, FILE *out) {
    fprintf(out,
            "usage: %s <command> [options] [args]\n       %s <command> --help\n\n%s\n\ncommands:\n",
            s->tool, s->tool, s->summary);
    for (size_t i = 0; i < s->ncommands; i++)
        fprintf(out, "  %-10s %s\n", s->commands[i].name, s->commands[i].summary);
    fprintf(out, "\noptions:\n  -h, --help  show this help\n  --version   show the version\n");
}

int sw_cli_main(const struct sw_cli_suite *s, int argc, char **argv) {
    sw_log_init(s->tool);
    sw_io_ignore_sigpipe(); /* a closed stdout is EPIPE, reported as SW_EPIPE: a quiet exit 0 */
    if (argc < 2) {
        suite_usage(s, stderr);
        return sw_log_report(sw_err_set(SW_EUSAGE, "missing command (see %s --help)", s->tool));
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        suite_usage(s, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        sw_print_version(s->tool, stdout);
        return 0;
    }
    for (size_t i = 0; i < s->ncommands; i++)
        if (strcmp(cmd, s->commands[i].name) == 0)
            return sw_log_report(s->commands[i].run(argc - 1, argv + 1));
    if (s->default_run && cmd[0] == '-' && cmd[1] == '-')
        return sw_log_report(s->default_run(argc, argv));
    return sw_log_report(
        sw_err_set(SW_EUSAGE, "unknown command '%s' (see %s --help)", cmd, s->tool));
}

json_t *sw_config_to_json(const struct sw_opt *opts, const void *dst) {
    json_t *j = json_object();
    if (!j) return NULL;
    for (const struct sw_opt *k = opts; k->key; k++) {
        const void *base = (const char *)dst + k->offset;
        json_t *v;
        switch (k->type) {
        case SW_OPT_BOOL: v = json_boolean(*(const int *)base); break;
        case SW_OPT_INT: v = json_integer(*(const int64_t *)base); break;
        case SW_OPT_FLOAT: v = json_real(*(const double *)base); break;
        default: {
            const char *s = *(char *const *)base;
            v = s ? json_string(s) : json_null();
        }
        }
        json_object_set_new(j, k->key, v ? v : json_null());
    }
    return j;
}
