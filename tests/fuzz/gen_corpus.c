/* Write the seed corpus: DIR/<service>/<method>-<label>, each file one
 * fuzzer input (the method's index among its service's methods in
 * tv_rpc_methods, then the request). Run once by tests/fuzz/gen-corpus;
 * the files are kept in tests/fuzz/corpus. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "seeds.h"
#include "thinvault/rpc.h"

static const char *const service_dir[] = {
        [TV_SERVICE_IDENTITY] = "identity",
        [TV_SERVICE_CONTROLLER] = "controller",
        [TV_SERVICE_GROUP_CONTROLLER] = NULL,
        [TV_SERVICE_SNAPSHOT_METADATA] = NULL,
        [TV_SERVICE_NODE] = "node",
};

/* The selector byte of `path` in its service's target. */
static int selector(const char *path, tv_service *ret_service) {
        const tv_rpc_method *m = tv_rpc_method_find(path);
        int idx = 0;

        if (!m)
                return -ENOENT;
        for (size_t i = 0; i < tv_rpc_n_methods; i++) {
                if (&tv_rpc_methods[i] == m)
                        break;
                if (tv_rpc_methods[i].service == m->service)
                        idx++;
        }
        *ret_service = m->service;
        return idx;
}

int main(int argc, char **argv) {
        fuzz_seed *seeds = NULL;
        char path[4096];
        int n;

        if (argc != 2) {
                fprintf(stderr, "usage: %s DIR\n", argv[0]);
                return 2;
        }
        n = fuzz_seeds(&seeds);
        if (n < 0) {
                fprintf(stderr, "gen-corpus: %s\n", strerror(-n));
                return 1;
        }
        for (int i = 0; i < n; i++) {
                tv_service svc;
                int sel = selector(seeds[i].path, &svc);
                const char *method = strrchr(seeds[i].path, '/') + 1;
                FILE *f;
                uint8_t b;

                if (sel < 0 || !service_dir[svc]) {
                        fprintf(stderr, "gen-corpus: %s has no target\n", seeds[i].path);
                        return 1;
                }
                snprintf(path, sizeof(path), "%s/%s", argv[1], service_dir[svc]);
                if (mkdir(path, 0755) < 0 && errno != EEXIST) {
                        perror(path);
                        return 1;
                }
                snprintf(path, sizeof(path), "%s/%s/%s-%s", argv[1], service_dir[svc], method, seeds[i].label);
                f = fopen(path, "we");
                b = (uint8_t)sel;
                if (!f || fwrite(&b, 1, 1, f) != 1 || (seeds[i].len && fwrite(seeds[i].body, seeds[i].len, 1, f) != 1) ||
                    fclose(f) != 0) {
                        perror(path);
                        return 1;
                }
        }
        fuzz_seeds_free(seeds, (size_t)n);
        return 0;
}
