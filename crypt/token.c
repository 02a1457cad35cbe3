/* The thinvault LUKS2 token: who a volume belongs to, readable without a
 * key. jansson writes and reads it; libcryptsetup stores it. */
#include <jansson.h>
#include <string.h>

#include "internal.h"

static bool fingerprint_valid(const char *fp) {
        if (!fp || strlen(fp) != TV_KEY_FINGERPRINT_SIZE - 1)
                return false;
        for (const char *p = fp; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

int tv_luks_token_to_json(const char *tenant, const char *fingerprint, char **ret_json) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        char *s;

        if (!tv_tenant_valid(tenant) || !fingerprint_valid(fingerprint) || !ret_json)
                return -EINVAL;
        /* "keyslots" is required by LUKS2 and left empty: no libcryptsetup
         * token handler opens a keyslot from this token. */
        j = json_pack("{s:s, s:[], s:s, s:s, s:i}", "type", TV_LUKS_TOKEN_TYPE, "keyslots", "tenant",
                      tenant, "key_fingerprint", fingerprint, "version", TV_LUKS_TOKEN_VERSION);
        if (!j)
                return -ENOMEM;
        s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!s)
                return -ENOMEM;
        *ret_json = s;
        return 0;
}

int tv_luks_token_from_json(const char *json, char **ret_tenant, char **ret_fingerprint) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        _cleanup_free_ char *tenant = NULL, *fp = NULL;
        const char *type = NULL, *t = NULL, *f = NULL;
        json_int_t version = 0;
        json_error_t jerr;

        if (!json)
                return -EBADMSG;
        j = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
        if (!j || !json_is_object(j))
                return -EBADMSG;
        if (json_unpack(j, "{s:s}", "type", &type) < 0)
                return -EBADMSG;
        if (strcmp(type, TV_LUKS_TOKEN_TYPE) != 0)
                return -ENODATA;
        if (json_unpack(j, "{s:I}", "version", &version) < 0 || version != TV_LUKS_TOKEN_VERSION)
                return -EBADMSG;
        if (json_unpack(j, "{s:s, s:s}", "tenant", &t, "key_fingerprint", &f) < 0)
                return -EBADMSG;
        if (!tv_tenant_valid(t) || !fingerprint_valid(f))
                return -EBADMSG;
        tenant = strdup(t);
        fp = strdup(f);
        if (!tenant || !fp)
                return -ENOMEM;
        if (ret_tenant)
                *ret_tenant = TAKE_PTR(tenant);
        if (ret_fingerprint)
                *ret_fingerprint = TAKE_PTR(fp);
        return 0;
}
