/* `thinvaultctl csi <Service>.<Method> [--json REQUEST]`: any CSI request
 * from proto3 JSON, the reply as JSON. Conversion goes through the
 * protobuf-c descriptors (pbjson), so no message needs code of its own. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "thinvault/pbjson.h"
#include "thinvault/rpc.h"
#include "thinvault/util.h"

static void csi_usage(FILE *f) {
        fputs("Usage: thinvaultctl [--endpoint unix:///PATH] csi <Service>.<Method> [--json REQUEST]\n"
              "       thinvaultctl csi --list\n"
              "Send one CSI request and print the reply as JSON (proto3 JSON mapping).\n"
              "\n"
              "  REQUEST    the request message as JSON (default {}); @FILE reads it from FILE, - from stdin\n"
              "  --raw FILE send FILE's bytes as the serialized request, unchecked (debugging; METHOD may\n"
              "             then be any gRPC path, e.g. /csi.v1.Identity/Nope)\n"
              "  --list     print every method with its request type\n"
              "  --help     this text\n"
              "\n"
              "Field names as in the proto or lowerCamelCase; 64-bit integers as strings or numbers;\n"
              "bytes as base64. Secrets in replies are printed as \"<redacted>\".\n"
              "Exit status: 0 OK, 1 the call returned another gRPC status (printed on stderr), 2 bad input.\n"
              "Example: thinvaultctl csi Identity.GetPluginInfo\n",
              f);
}

static char *read_stream(FILE *f, size_t *ret_len) {
        size_t len = 0, cap = 0;
        char *buf = NULL;

        for (;;) {
                if (len + 4096 + 1 > cap) {
                        cap = cap ? cap * 2 : 8192;
                        if (cap > (64u << 20)) {
                                free(buf);
                                return NULL;
                        }
                        char *b = realloc(buf, cap);
                        if (!b) {
                                free(buf);
                                return NULL;
                        }
                        buf = b;
                }
                size_t n = fread(buf + len, 1, cap - len - 1, f);
                len += n;
                if (n == 0)
                        break;
        }
        if (ferror(f)) {
                free(buf);
                return NULL;
        }
        buf[len] = '\0';
        if (ret_len)
                *ret_len = len;
        return buf;
}

/* REQUEST text: literal JSON, @FILE, or - for stdin. */
static char *load_request(const char *arg) {
        if (!arg)
                return strdup("{}");
        if (strcmp(arg, "-") == 0)
                return read_stream(stdin, NULL);
        if (arg[0] == '@') {
                FILE *f = fopen(arg + 1, "re");
                if (!f)
                        return NULL;
                char *s = read_stream(f, NULL);
                fclose(f);
                return s;
        }
        return strdup(arg);
}

static void list_methods(void) {
        for (size_t i = 0; i < tv_rpc_n_methods; i++)
                printf("%-45s %s%s\n", tv_rpc_methods[i].name, tv_rpc_methods[i].request->name,
                       tv_rpc_methods[i].server_streaming ? " (server streaming: not supported here)" : "");
}

static int print_reply(const tv_rpc_method *m, const tv_rpc_result *res) {
        tv_pbjson_options opts = {.is_secret = tv_rpc_field_is_secret, .pretty = true};
        _cleanup_free_ char *json = NULL;
        ProtobufCMessage *resp;
        int r;

        resp = protobuf_c_message_unpack(m->response, NULL, res->body_len, res->body);
        if (!resp) {
                fprintf(stderr, "thinvaultctl: the reply is not a valid %s message\n", m->response->name);
                return CLI_FAILED;
        }
        r = tv_pbjson_render(resp, &opts, &json);
        protobuf_c_message_free_unpacked(resp, NULL);
        if (r < 0) {
                fprintf(stderr, "thinvaultctl: cannot render the reply as JSON: %s\n", strerror(-r));
                return CLI_FAILED;
        }
        printf("%s\n", json);
        return CLI_OK;
}

/* --raw: bytes as given, to any path; the reply printed when it parses. */
static int call_raw(const cli_globals *g, const tv_rpc_method *m, const char *method, const char *file) {
        _cleanup_free_ char *data = NULL;
        tv_rpc_result res;
        size_t len = 0;
        FILE *f;
        int r;

        f = strcmp(file, "-") == 0 ? stdin : fopen(file, "re");
        if (!f) {
                fprintf(stderr, "thinvaultctl: cannot open %s: %s\n", file, strerror(errno));
                return CLI_USAGE;
        }
        data = read_stream(f, &len);
        if (f != stdin)
                fclose(f);
        if (!data) {
                fprintf(stderr, "thinvaultctl: cannot read %s\n", file);
                return CLI_USAGE;
        }
        r = tv_rpc_call(g->endpoint, m ? m->path : method, (const uint8_t *)data, len, g->timeout_ms, &res);
        if (r < 0) {
                fprintf(stderr, "thinvaultctl: cannot call %s on %s: %s\n", method, g->endpoint, strerror(-r));
                return CLI_FAILED;
        }
        if (res.status != TV_STATUS_OK) {
                fprintf(stderr, "%s: %s\n", tv_status_name(res.status), res.message ? res.message : "");
                tv_rpc_result_clear(&res);
                return CLI_FAILED;
        }
        r = m ? print_reply(m, &res) : CLI_OK;
        tv_rpc_result_clear(&res);
        return r;
}

int cli_cmd_csi(const cli_globals *g, int argc, char **argv) {
        enum { OPT_JSON = 256, OPT_RAW, OPT_LIST, OPT_HELP };
        static const struct option opts[] = {
                {"json", required_argument, NULL, OPT_JSON},
                {"raw", required_argument, NULL, OPT_RAW},
                {"list", no_argument, NULL, OPT_LIST},
                {"help", no_argument, NULL, OPT_HELP},
                {0},
        };
        _cleanup_free_ char *text = NULL, *err = NULL;
        _cleanup_free_ uint8_t *body = NULL;
        const char *json_arg = NULL, *raw_arg = NULL;
        const tv_rpc_method *m;
        ProtobufCMessage *req = NULL;
        tv_rpc_result res;
        size_t len;
        int c, r;

        optind = 0; /* glibc: 0 re-initialises getopt for the sub-command */
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case OPT_JSON:
                        json_arg = optarg;
                        break;
                case OPT_RAW:
                        raw_arg = optarg;
                        break;
                case OPT_LIST:
                        list_methods();
                        return CLI_OK;
                case OPT_HELP:
                        csi_usage(stdout);
                        return CLI_OK;
                default:
                        csi_usage(stderr);
                        return CLI_USAGE;
                }
        }
        if (optind != argc - 1) {
                csi_usage(stderr);
                return CLI_USAGE;
        }
        m = tv_rpc_method_find(argv[optind]);
        if (raw_arg)
                return call_raw(g, m, argv[optind], raw_arg);
        if (!m) {
                fprintf(stderr, "thinvaultctl: unknown method '%s' (see thinvaultctl csi --list)\n", argv[optind]);
                return CLI_USAGE;
        }
        if (m->server_streaming) {
                fprintf(stderr, "thinvaultctl: %s streams its reply; thinvaultctl csi sends unary calls only\n",
                        m->name);
                return CLI_USAGE;
        }

        text = load_request(json_arg);
        if (!text) {
                fprintf(stderr, "thinvaultctl: cannot read request %s: %s\n", json_arg, strerror(errno));
                return CLI_USAGE;
        }
        r = tv_pbjson_parse(m->request, text, &req, &err);
        if (r < 0) {
                fprintf(stderr, "thinvaultctl: bad %s: %s\n", m->request->name, err ? err : strerror(-r));
                return CLI_USAGE;
        }
        len = protobuf_c_message_get_packed_size(req);
        body = malloc(len ? len : 1);
        if (!body) {
                protobuf_c_message_free_unpacked(req, NULL);
                return CLI_FAILED;
        }
        protobuf_c_message_pack(req, body);
        protobuf_c_message_free_unpacked(req, NULL);

        r = tv_rpc_call(g->endpoint, m->path, body, len, g->timeout_ms, &res);
        if (r < 0) {
                fprintf(stderr, "thinvaultctl: cannot call %s on %s: %s\n", m->name, g->endpoint, strerror(-r));
                return CLI_FAILED;
        }
        if (res.status != TV_STATUS_OK) {
                fprintf(stderr, "%s: %s\n", tv_status_name(res.status), res.message ? res.message : "");
                tv_rpc_result_clear(&res);
                return CLI_FAILED;
        }
        r = print_reply(m, &res);
        tv_rpc_result_clear(&res);
        return r;
}
