/* LV names: the mapping from CSI request names, and lvm2's own rules. */
#include <string.h>

#include <openssl/evp.h>

#include "thinvault/lvm.h"

/* lvm2 refuses LV names longer than this (lib/misc/lvm-string.h NAME_LEN
 * is 128 with the NUL). */
#define LVM_NAME_MAX 127

/* How much of the sanitised request name is kept; room for "pvc-" + UUID. */
#define SANITISED_MAX 40
#define HASH_HEX 16

/* lib/misc/lvm-string.c: apply_lvname_restrictions(). */
static const char *const reserved_prefixes[] = {"pvmove", "snapshot"};
static const char *const reserved_parts[] = {
        "_cdata", "_cmeta", "_corig", "_mimage", "_mlog",    "_rimage",  "_rmeta",
        "_tdata", "_tmeta", "_vdata", "_pmspare", "_vorigin", "_cpool",  "_cvol",
        "_imeta", "_iorig", "_wcorig",
};

static bool name_char_ok(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '+' || c == '_' || c == '.' || c == '-';
}

bool tv_lvm_name_valid(const char *name) {
        size_t n;

        if (!name || !*name || name[0] == '-')
                return false;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return false;
        n = strlen(name);
        if (n > LVM_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!name_char_ok(name[i]))
                        return false;
        for (size_t i = 0; i < ELEMENTSOF(reserved_prefixes); i++)
                if (strncmp(name, reserved_prefixes[i], strlen(reserved_prefixes[i])) == 0)
                        return false;
        for (size_t i = 0; i < ELEMENTSOF(reserved_parts); i++)
                if (strstr(name, reserved_parts[i]))
                        return false;
        return true;
}

int tv_lv_name_from_request(tv_lv_kind kind, const char *request_name,
                            char ret_name[TV_LV_NAME_SIZE]) {
        static const char hex[] = "0123456789abcdef";
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;
        char out[TV_LV_NAME_SIZE];
        size_t o = 0, kept = 0;
        bool pending_dash = false;

        if (!request_name || !*request_name)
                return -EINVAL;
        if (kind != TV_LV_KIND_VOLUME && kind != TV_LV_KIND_SNAPSHOT)
                return -EINVAL;
        if (EVP_Digest(request_name, strlen(request_name), md, &md_len, EVP_sha256(), NULL) != 1 ||
            md_len < HASH_HEX / 2)
                return -EIO;

        const char *prefix = kind == TV_LV_KIND_SNAPSHOT ? "tvs-" : "tv-";
        memcpy(out, prefix, strlen(prefix));
        o = strlen(prefix);

        /* Only [a-z0-9] survive and runs of anything else become one '-':
         * so no '_' (every lvm2-reserved part starts with one), no '.', no
         * "--" and the '-' count stays low for the doubled dm name. */
        for (const unsigned char *s = (const unsigned char *)request_name; *s && kept < SANITISED_MAX;
             s++) {
                unsigned char c = *s;
                if (c >= 'A' && c <= 'Z')
                        c = (unsigned char)(c - 'A' + 'a');
                if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
                        if (pending_dash && kept > 0) {
                                /* No room for '-' and a char: stop here. */
                                if (kept + 2 > SANITISED_MAX)
                                        break;
                                out[o++] = '-';
                                kept++;
                        }
                        pending_dash = false;
                        out[o++] = (char)c;
                        kept++;
                } else
                        pending_dash = true;
        }
        if (kept > 0)
                out[o++] = '-';
        for (size_t i = 0; i < HASH_HEX / 2; i++) {
                out[o++] = hex[md[i] >> 4];
                out[o++] = hex[md[i] & 0xf];
        }
        out[o] = '\0';

        memcpy(ret_name, out, o + 1);
        return 0;
}
