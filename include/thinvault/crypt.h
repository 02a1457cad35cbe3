/* thinvault: tenant keys and LUKS2 volumes.
 *
 * Every volume is LUKS2 with a random 512-bit volume key (aes-xts-plain64).
 * One keyslot holds it, unlocked by the tenant's key; a LUKS2 token of type
 * "thinvault" records whose volume it is:
 *
 *   {"type":"thinvault","keyslots":[],"tenant":"team-a",
 *    "key_fingerprint":"3f1c2a9b2e7c1d0a","version":1}
 *
 * so `cryptsetup luksDump` (or tv_luks_token()) tells the owner without any
 * key. The token is bookkeeping, not a guard: isolation comes from the key.
 *
 * Keys (tv_key) come from the tenant's node-stage secret or are derived on
 * the node with HKDF-SHA256 from a master key file and the tenant name.
 * A tv_key lives in its own mlock'ed, MADV_DONTDUMP/MADV_DONTFORK mapping,
 * is wiped and unlocked by tv_key_free(), and has no accessor for its
 * bytes outside crypt/: nothing can log it, put it in a message, a file,
 * argv or env. Logs and errors name the tenant and the fingerprint.
 *
 * libcryptsetup does all LUKS work in-process (no cryptsetup subprocess);
 * libblkid says what is on a device before anything is written to it.
 *
 * Errors: every function returns 0 (or a documented non-negative value) on
 * success and a negative errno on failure; `ret_` outputs are written only
 * on success. Functions that can fail for a reason a person must act on
 * take a `tv_crypt_error *err` last: when not NULL it is cleared on entry
 * and on failure holds one line (what, on which device/tenant, and
 * libcryptsetup's own words), fit for a gRPC status and free of key bytes.
 * The errno values used throughout:
 *   -EINVAL       bad argument: tenant or mapping name, a key shorter than
 *                 32 bytes, a secret that is not base64, keys of two tenants
 *   -ENOENT       the device (or master key file) does not exist
 *   -EPERM        the master key file is readable by group/others or owned
 *                 by another user
 *   -EEXIST       format: the device is not empty; open: the mapping name
 *                 is taken by another device
 *   -EMEDIUMTYPE  the device holds no LUKS2 header (empty, erased, other)
 *   -ENODATA      LUKS2, but without a thinvault token (not ours)
 *   -EBADMSG      a thinvault token that cannot be read (bad JSON, version)
 *   -EKEYREJECTED the key does not open the volume, or the volume belongs
 *                 to another tenant than the key
 *   -EBUSY        the device or mapping is in use (mapped, mounted), or
 *                 another thinvault call holds the device's lock for > 30 s
 *   -ENOMEM       out of memory, or key memory could not be locked
 *                 (RLIMIT_MEMLOCK)
 *   -EIO          any other device or libcryptsetup failure
 *
 * Environment: LUKS2 metadata locking needs /run/cryptsetup; without udev
 * (containers, the test guest) set DM_DISABLE_UDEV=1 so libdevmapper makes
 * the /dev/mapper nodes itself. External (plugin) token handlers are
 * disabled process-wide the first time this layer touches libcryptsetup.
 *
 * Threads: every function may be called from many threads at once.
 * libcryptsetup and libdevmapper are not thread-safe, so the LUKS verbs run
 * their library calls one at a time under a process-wide mutex (a format
 * holds it for its whole duration). Verbs that write metadata (format,
 * rotate, erase) also hold an exclusive flock(2) on the device node for
 * their read-check-write sequence, so two of them on one device (same
 * node path) never interleave, in one process or across processes; the
 * wait for it happens outside the mutex.
 *
 * Nothing here knows about gRPC or protobuf. */
#ifndef THINVAULT_CRYPT_H
#define THINVAULT_CRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thinvault/util.h"

/* ---- errors ----------------------------------------------------------- */

typedef struct tv_crypt_error {
        /* One line for a person: `open /dev/tvpool/tv-pvc-1 as tv-pvc-1:
         * key 0a1b... of tenant team-a does not open the volume (No key
         * available with this passphrase.)`. Empty when there is no error. */
        char message[512];
} tv_crypt_error;

/* ---- tenants ---------------------------------------------------------- */

/* Room for a tenant name and its NUL. */
#define TV_TENANT_SIZE 64

/* True when `tenant` is a Kubernetes namespace name (RFC 1123 label):
 * 1..63 chars of [a-z0-9-], starting and ending with [a-z0-9]. Tenants are
 * namespaces by design; the rule also keeps the name a plain token in logs,
 * JSON and the HKDF info. Pure. */
bool tv_tenant_valid(const char *tenant);

/* ---- tenant keys ------------------------------------------------------ */

typedef struct tv_key tv_key;

/* Shortest and longest key accepted from any source, in bytes. */
#define TV_KEY_MIN_SIZE 32
#define TV_KEY_MAX_SIZE 1024
/* Size of a derived key. */
#define TV_KEY_DERIVED_SIZE 32

/* The node-stage secret field that holds the key. */
#define TV_KEY_SECRET_FIELD "key"

/* A fingerprint: 16 lowercase hex digits + NUL. It is the first 64 bits of
 *   SHA-256("thinvault key fingerprint v1" || 0x00 || key)
 * i.e. the key bytes behind a fixed, NUL-terminated domain label, so it
 * matches no other hash of the key anyone else computes, and it is over the
 * key only (the same key gets the same fingerprint whoever holds it: an
 * audit can tell two tenants that were given one key). */
#define TV_KEY_FINGERPRINT_SIZE 17

/* HKDF-SHA256 parameters of tv_key_derive() (RFC 5869, extract-and-expand):
 *   IKM  = the master key file's bytes, all of them, as they are
 *   salt = "thinvault.csi.io tenant key salt v1" (fixed: the IKM is already
 *          full-entropy; a fixed salt keeps derivation a pure function of
 *          file + tenant, so every node derives the same key)
 *   info = "thinvault tenant key v1" || tenant (the prefix has a fixed
 *          length, so distinct tenants give distinct info strings)
 *   L    = 32 */
#define TV_KEY_HKDF_SALT "thinvault.csi.io tenant key salt v1"
#define TV_KEY_HKDF_INFO_PREFIX "thinvault tenant key v1"

/* Master key file bounds, in bytes. */
#define TV_MASTER_KEY_MIN_SIZE 32
#define TV_MASTER_KEY_MAX_SIZE 4096

/* Make a key for `tenant` from the node-stage secret map, given as `n`
 * parallel entries (`keys[i]`, `values[i]`, NUL-terminated strings).
 *
 * The entry named TV_KEY_SECRET_FIELD ("key") must hold the key in base64,
 * standard (+/) or URL-safe (-_) alphabet, padded or not; ASCII whitespace
 * anywhere is ignored (a trailing newline from `--from-file`, a line-wrapped
 * `base64` output). It must decode to TV_KEY_MIN_SIZE..TV_KEY_MAX_SIZE bytes,
 * e.g. `openssl rand -base64 32`.
 *
 * Raw (non-base64) values are refused, not taken as bytes: a CSI secret is
 * a proto3 string (UTF-8, no NUL), so random bytes cannot travel in it; a
 * mistyped base64 value would otherwise silently become a different key and
 * lock the volume away; and text is usually a password with far less than
 * the 256 bits of entropy the PBKDF2-1000 keyslot relies on.
 *
 * The decoded key only ever sits in locked memory. `values` stays the
 * caller's to erase (explicit_bzero) when it is done with the request.
 * Returns 0 and *ret_key (free with tv_key_free()), or
 *   -EINVAL  tenant invalid; no "key" entry, or two of them; not base64;
 *            fewer than 32 or more than 1024 bytes. The message names the
 *            tenant and the rule, never the value.
 *   -ENOMEM  out of memory, or the key memory could not be locked. */
int tv_key_from_secret(const char *const *keys, const char *const *values, size_t n,
                       const char *tenant, tv_key **ret_key, tv_crypt_error *err);

/* Derive the key of `tenant` from the master key file at `master_key_path`
 * (parameters above; OpenSSL's HKDF). The file must be a regular file of
 * TV_MASTER_KEY_MIN_SIZE..TV_MASTER_KEY_MAX_SIZE bytes, owned by root or
 * the caller's euid, and not accessible to group or others (mode 0600 or
 * 0400; a Kubernetes Secret volume needs `defaultMode: 0400`). Symlinks
 * are followed (Secret volumes are symlinks). It is read straight into
 * locked memory. Make one with `head -c 32 /dev/urandom`.
 * Returns 0 and *ret_key (TV_KEY_DERIVED_SIZE bytes), or
 *   -EINVAL  tenant invalid; file too short/long or not a regular file
 *   -ENOENT  no such file
 *   -EPERM   mode allows group/others, or owned by another user
 *   -EACCES  the file cannot be opened
 *   -EIO     read or HKDF failure
 *   -ENOMEM  out of memory or the key memory could not be locked. */
int tv_key_derive(const char *master_key_path, const char *tenant, tv_key **ret_key,
                  tv_crypt_error *err);

/* Make a key for `tenant` from `size` raw bytes (TV_KEY_MIN_SIZE..
 * TV_KEY_MAX_SIZE), copied into locked memory; the caller erases its copy.
 * For tests and tools that already hold bytes. Returns 0, -EINVAL, -ENOMEM. */
int tv_key_new(const char *tenant, const void *bytes, size_t size, tv_key **ret_key,
               tv_crypt_error *err);

/* Wipe (explicit_bzero), unlock and unmap the key. Safe with NULL. */
void tv_key_free(tv_key *key);
TV_DEFINE_FREEP(tv_key, tv_key_free)

/* The tenant the key was made for; valid while the key lives. */
const char *tv_key_tenant(const tv_key *key);
/* The key's fingerprint (16 hex digits); valid while the key lives. */
const char *tv_key_fingerprint(const tv_key *key);
/* Key length in bytes. */
size_t tv_key_size(const tv_key *key);
/* True when both keys hold the same bytes (constant time for equal sizes);
 * the tenants are not compared. */
bool tv_key_equal(const tv_key *a, const tv_key *b);

/* ---- the thinvault LUKS2 token ---------------------------------------- */

#define TV_LUKS_TOKEN_TYPE "thinvault"
#define TV_LUKS_TOKEN_VERSION 1

/* Encode the token JSON for `tenant` and `fingerprint` (compact, keys as in
 * the example at the top) into a heap string the caller frees.
 * Returns 0, -EINVAL (tenant or fingerprint malformed), -ENOMEM. Pure. */
int tv_luks_token_to_json(const char *tenant, const char *fingerprint, char **ret_json);

/* Parse a token JSON. Returns 0 and the tenant and fingerprint (heap
 * strings the caller frees; either ret_ may be NULL), or
 *   -ENODATA      valid JSON but its "type" is not "thinvault"
 *   -EBADMSG      not JSON, a field missing or malformed, or a "version"
 *                 other than 1.
 * Pure. */
int tv_luks_token_from_json(const char *json, char **ret_tenant, char **ret_fingerprint);

/* ---- probing ---------------------------------------------------------- */

typedef enum tv_luks_kind {
        TV_LUKS_KIND_EMPTY = 0,   /* libblkid finds no signature */
        TV_LUKS_KIND_OURS = 1,    /* LUKS2 with a thinvault token */
        TV_LUKS_KIND_FOREIGN = 2, /* LUKS1, or LUKS2 without a thinvault token */
        TV_LUKS_KIND_OTHER = 3,   /* a filesystem, RAID member, partition table... */
} tv_luks_kind;

/* "empty", "ours", "foreign", "other"; "unknown" for other values. */
const char *tv_luks_kind_to_string(tv_luks_kind kind);

typedef struct tv_luks_info {
        tv_luks_kind kind;
        /* libblkid's TYPE ("crypto_LUKS", "ext4", "xfs", "LVM2_member"...),
         * PTTYPE for a partition table ("dos", "gpt"), "ambivalent" when
         * several signatures were found; "" when empty. */
        char type[32];
        /* LUKS version (1 or 2) for OURS and FOREIGN, else 0. */
        int luks_version;
        /* OURS only (else ""): the token's tenant and key fingerprint. */
        char tenant[TV_TENANT_SIZE];
        char fingerprint[TV_KEY_FINGERPRINT_SIZE];
        /* FOREIGN LUKS2 only: libblkid sees the signature but libcryptsetup
         * loads neither header copy (damaged checksums or JSON). */
        bool damaged;
        /* OTHER only: where libblkid found the signature's magic bytes
         * (byte offset on the device, length). magic_len is 0 when it does
         * not say (several signatures: "ambivalent"). */
        uint64_t magic_offset;
        uint32_t magic_len;
} tv_luks_info;

/* Say what is on `device_path` without writing to it (libblkid safe
 * probe of superblocks and partition tables, then the LUKS2 token). A
 * device is "empty" when libblkid knows no signature on it: random or
 * unknown data counts as empty. Callers format only EMPTY and open only
 * OURS. Returns 0 and *ret_info, or
 *   -ENOENT   no such device
 *   -EACCES   it cannot be opened
 *   -EBADMSG  LUKS2 with a thinvault token that cannot be read
 *   -EIO      libblkid or libcryptsetup failed. */
int tv_luks_probe(const char *device_path, tv_luks_info *ret_info, tv_crypt_error *err);

/* Whether bytes [offset, offset + len) of what the LUKS2 volume on
 * `device_path` decrypts to were ever written through a mapping. dm-crypt
 * stores ciphertext, and no write makes a whole encryption sector of
 * zeros; a thin LV reads zeros where nothing was written. So when every
 * encryption sector covering the range reads as zeros on the device, the
 * plaintext there is only the decryption of zeros: random bytes nobody
 * wrote, in which libblkid can find a short magic by chance. Reads with
 * O_DIRECT (the device's page cache can predate writes through the
 * mapping). No key is needed. Returns 1 (never written), 0 (written), or
 *   -EMEDIUMTYPE  no LUKS2 header
 *   -ERANGE       the range is not inside the data area
 *   -ENOENT, -EACCES, -EIO. */
int tv_luks_plaintext_unwritten(const char *device_path, uint64_t offset, uint64_t len, tv_crypt_error *err);

/* ---- LUKS2 volumes ---------------------------------------------------- */

/* Format `device_path` as LUKS2 for the key's tenant (the tenant comes
 * from the key, so the two cannot disagree): random 512-bit volume key,
 * aes-xts-plain64, 512-byte sectors, the thinvault token, and one keyslot
 * for `key` with PBKDF2-SHA256 at 1000 iterations (no benchmark: the key is
 * full-entropy, so a costly KDF buys nothing; see DESIGN.md).
 * Probes first and writes nothing unless the device is EMPTY, or OURS
 * with no keyslot at all (a format that stopped between writing the token
 * and the keyslot: nothing ever opened it, so it is formatted again). If a
 * step after the header was written fails, the header area is wiped again,
 * so a retry finds the device empty.
 * Returns 0, or
 *   -EEXIST   the device is not empty (ours with a keyslot included: open
 *             it instead); the message names what is on it
 *   -ENOENT, -EACCES, -EBUSY, -EINVAL (device too small), -ENOMEM, -EIO. */
int tv_luks_format(const char *device_path, const tv_key *key, tv_crypt_error *err);

/* Flags for tv_luks_open(). */
typedef enum tv_luks_open_flags {
        TV_LUKS_OPEN_READONLY = 1u << 0,
} tv_luks_open_flags;

/* Longest device-mapper name accepted (libdevmapper's DM_NAME_LEN - 1). */
#define TV_LUKS_MAPPING_NAME_MAX 127

/* True when `name` can be a mapping name: 1..127 chars of
 * [A-Za-z0-9._+-], not "." or "..", not starting with '-'. Pure. */
bool tv_luks_mapping_name_valid(const char *name);

/* Open `device_path` (which must be OURS, for the key's tenant) as
 * /dev/mapper/`mapping_name`, with no dm-crypt read/write workqueues and
 * discards allowed (CRYPT_ACTIVATE_NO_READ_WORKQUEUE |
 * CRYPT_ACTIVATE_NO_WRITE_WORKQUEUE | CRYPT_ACTIVATE_ALLOW_DISCARDS), plus
 * read-only with TV_LUKS_OPEN_READONLY. The volume key goes into the dm
 * table, not the kernel keyring, so tv_luks_resize() needs no tenant key
 * (and kernel keyrings, often blocked in containers, are not needed).
 * Idempotent: when `mapping_name` already maps this device, the key is
 * checked against the header (no new mapping) and 0 is returned.
 * Returns 0, or
 *   -EKEYREJECTED  the key opens no keyslot, or the token names another
 *                  tenant; no mapping is left behind
 *   -EEXIST        `mapping_name` exists and maps another device
 *   -EMEDIUMTYPE   no LUKS2 header; -ENODATA: LUKS2 but not ours
 *   -EBADMSG, -EBUSY (the device is mapped under another name),
 *   -EINVAL, -ENOENT, -EACCES, -ENOMEM, -EIO. */
int tv_luks_open(const char *device_path, const char *mapping_name, const tv_key *key,
                 uint32_t flags, tv_crypt_error *err);

/* Remove the mapping `mapping_name`. Idempotent: 0 when it does not exist.
 * Returns 0, or
 *   -EBUSY        it is in use (mounted, held open)
 *   -EMEDIUMTYPE  it exists but is not a LUKS mapping (left alone)
 *   -EINVAL, -EIO. */
int tv_luks_close(const char *mapping_name, tv_crypt_error *err);

/* Grow (or shrink) the open mapping `mapping_name` to its whole backing
 * device, after the LV was resized; the data offset does not move. Writes
 * the new size of the mapping in bytes to *ret_size when not NULL.
 * Returns 0, or
 *   -ENODEV       no such mapping
 *   -EMEDIUMTYPE  not a LUKS mapping
 *   -ENOKEY       the mapping keeps its volume key in the kernel keyring
 *                 (not opened by tv_luks_open()); reopen it
 *   -EINVAL, -EIO. */
int tv_luks_resize(const char *mapping_name, uint64_t *ret_size, tv_crypt_error *err);

/* Replace the keyslot that `old_key` opens with one for `new_key` (same
 * tenant, different bytes): add the new slot, check that it opens, point
 * the token at the new fingerprint, destroy the old slot. The volume key
 * and the data are untouched; other keyslots are left alone. Safe to retry
 * after a crash at any step: when `new_key` already opens the volume, the
 * remaining steps are finished (and 0 returned even if `old_key` no longer
 * opens). Works on an open volume.
 * Returns 0, or
 *   -EKEYREJECTED  neither key opens the volume, or another tenant's volume
 *   -EINVAL        the keys are of different tenants, or equal
 *   -EMEDIUMTYPE, -ENODATA, -EBADMSG, -ENOENT, -EACCES, -EBUSY, -ENOMEM, -EIO. */
int tv_luks_rotate(const char *device_path, const tv_key *old_key, const tv_key *new_key,
                   tv_crypt_error *err);

/* Crypto-erase `device_path`: destroy every keyslot, then overwrite the
 * whole LUKS header area (both metadata copies and the keyslot area, i.e.
 * everything before the data offset) with random bytes. The only copies of
 * the volume key are gone: nothing can open the volume again and the data
 * area is left as ciphertext no key decrypts. Afterwards the device probes
 * EMPTY. Any LUKS version is erased (the caller decides the device is its
 * to destroy, e.g. from its LV tags); a non-LUKS device is refused.
 * A LUKS signature whose header libcryptsetup cannot load (damaged) is
 * erased too: its first 16 MiB (or the whole device, if smaller) are
 * overwritten with random bytes, and 0 is returned.
 * Idempotent: an EMPTY device returns 0 with nothing written.
 * Call it before the LV is removed: with discards, thin blocks go back to
 * the pool and may be handed to another tenant.
 * Returns the number of keyslots destroyed (>= 0), or
 *   -EBUSY        the device is mapped (close it first: an open mapping
 *                 keeps the volume key in the kernel) or locked
 *   -EMEDIUMTYPE  it holds another signature (nothing written)
 *   -ENOENT, -EACCES, -EIO. */
int tv_luks_erase(const char *device_path, tv_crypt_error *err);

/* Read the thinvault token of `device_path` without any key (for the admin
 * CLI audit). Returns 0 and heap strings the caller frees (either ret_ may
 * be NULL), or -EMEDIUMTYPE (no LUKS2 header), -ENODATA (no thinvault
 * token), -EBADMSG, -ENOENT, -EACCES, -EIO. */
int tv_luks_token(const char *device_path, char **ret_tenant, char **ret_fingerprint,
                  tv_crypt_error *err);

#endif
