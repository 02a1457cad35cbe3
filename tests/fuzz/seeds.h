/* Valid requests for every method the server routes: the seed corpus
 * (tests/fuzz/gen-corpus writes them) and the fuzzer's setup, which runs
 * the first FUZZ_N_SETUP of them once so the pool holds volumes and a
 * snapshot that the seeds name. */
#ifndef THINVAULT_FUZZ_SEEDS_H
#define THINVAULT_FUZZ_SEEDS_H

#include <stddef.h>
#include <stdint.h>

/* Where the fuzzer's kubelet directory is: node requests name paths in
 * it, so it is fixed; on tmpfs, because it is emptied after every input
 * (rmdir on ext4 took 2 ms). tests/fuzz/fuzz_main.c owns it. */
#define FUZZ_STATE_DIR "/dev/shm/thinvault-fuzz"
#define FUZZ_KUBELET_DIR FUZZ_STATE_DIR "/kubelet"

/* The directories the kubelet would have made before calling the node
 * service (parents of the seeds' staging and target paths) and those the
 * setup's stage and publish made, relative to FUZZ_KUBELET_DIR, parents
 * first. */
#define FUZZ_KUBELET_SKELETON                                                                        \
        "plugins", "plugins/kubernetes.io", "plugins/kubernetes.io/csi",                             \
                "plugins/kubernetes.io/csi/thinvault.csi.io", "plugins/kubernetes.io/csi/thinvault.csi.io/a1", \
                "plugins/kubernetes.io/csi/thinvault.csi.io/a1/globalmount",                             \
                "plugins/kubernetes.io/csi/volumeDevices", "plugins/kubernetes.io/csi/volumeDevices/staging", \
                "pods", "pods/0f1e", "pods/0f1e/volumes", "pods/0f1e/volumes/kubernetes.io~csi",         \
                "pods/0f1e/volumes/kubernetes.io~csi/pvc-a", "pods/0f1e/volumes/kubernetes.io~csi/pvc-a/mount", \
                "pods/0f1e/volumeDevices",                                                               \
                "pods/0f1e/volumeDevices/kubernetes.io~csi"

typedef struct fuzz_seed {
        const char *path; /* gRPC path */
        const char *label; /* file name part */
        uint8_t *body;
        size_t len;
} fuzz_seed;

/* The seeds, setup first. Returns the count; *ret (free with
 * fuzz_seeds_free) or -ENOMEM. */
int fuzz_seeds(fuzz_seed **ret);
void fuzz_seeds_free(fuzz_seed *s, size_t n);

/* How many seeds the fuzzer's setup runs: CreateVolume x2, CreateSnapshot,
 * NodeStageVolume and NodePublishVolume of the first volume (formatted,
 * mapped, mounted at STAGING and bound at TARGET), NodeStageVolume of the
 * second as a block volume, and a third (block) volume left unstaged. */
#define FUZZ_N_SETUP 10

#endif
