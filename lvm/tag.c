/* LV tags: `tv.<key>=<value>` with the value escaped into lvm2's tag
 * alphabet ([A-Za-z0-9_+.-/=!:&#]). '#' is the escape character: nothing
 * Kubernetes names contain, and allowed by lvm2. Only the canonical form
 * decodes (uppercase hex, no escape of a byte that is kept as is), so
 * encode(decode(t)) == t for every tag decode accepts: a tag can be deleted
 * by re-encoding what was read. */
#include <string.h>

#include "thinvault/lvm.h"

#define TAG_PREFIX "tv."
#define TAG_KEY_MAX 64
#define ESCAPE '#'

static bool value_char_kept(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '+' || c == '-' || c == '/' || c == ':';
}

static bool key_valid(const char *key, size_t n) {
        if (n == 0 || n > TAG_KEY_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = key[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
                if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
                        return false;
        }
        return true;
}

static int hex_value(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1; /* lowercase too: only the canonical form decodes */
}

int tv_lvm_tag_encode(const char *key, const char *value, char **ret_tag) {
        static const char hex[] = "0123456789ABCDEF";
        size_t klen, need;

        if (!key || !value)
                return -EINVAL;
        klen = strlen(key);
        if (!key_valid(key, klen))
                return -EINVAL;

        need = strlen(TAG_PREFIX) + klen + 1;
        for (const unsigned char *s = (const unsigned char *)value; *s; s++) {
                need += value_char_kept(*s) ? 1 : 3;
                if (need > TV_LVM_TAG_MAX)
                        return -EINVAL;
        }
        if (need > TV_LVM_TAG_MAX)
                return -EINVAL;

        char *tag = malloc(need + 1);
        if (!tag)
                return -ENOMEM;
        size_t o = 0;
        memcpy(tag, TAG_PREFIX, strlen(TAG_PREFIX));
        o += strlen(TAG_PREFIX);
        memcpy(tag + o, key, klen);
        o += klen;
        tag[o++] = '=';
        for (const unsigned char *s = (const unsigned char *)value; *s; s++) {
                if (value_char_kept(*s))
                        tag[o++] = (char)*s;
                else {
                        tag[o++] = ESCAPE;
                        tag[o++] = hex[*s >> 4];
                        tag[o++] = hex[*s & 0xf];
                }
        }
        tag[o] = '\0';
        *ret_tag = tag;
        return 0;
}

int tv_lvm_tag_decode(const char *tag, char **ret_key, char **ret_value) {
        const char *eq, *k, *v;
        size_t klen;

        if (!tag)
                return -EINVAL;
        if (strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) != 0)
                return -ENOMSG;
        k = tag + strlen(TAG_PREFIX);
        eq = strchr(k, '=');
        if (!eq)
                return -EINVAL;
        klen = (size_t)(eq - k);
        if (!key_valid(k, klen))
                return -EINVAL;
        v = eq + 1;

        _cleanup_free_ char *value = malloc(strlen(v) + 1);
        if (!value)
                return -ENOMEM;
        size_t o = 0;
        for (const char *s = v; *s; s++) {
                if (*s == ESCAPE) {
                        int hi = hex_value(s[1]), lo = hi < 0 ? -1 : hex_value(s[2]);
                        if (hi < 0 || lo < 0)
                                return -EINVAL;
                        unsigned char b = (unsigned char)(hi << 4 | lo);
                        /* "#41" for 'A' would decode, but re-encode as "A":
                         * refuse, so decode and encode are inverses. */
                        if (b == 0 || value_char_kept(b))
                                return -EINVAL;
                        value[o++] = (char)b;
                        s += 2;
                } else if (value_char_kept((unsigned char)*s))
                        value[o++] = *s;
                else
                        return -EINVAL;
        }
        value[o] = '\0';

        char *key = strndup(k, klen);
        if (!key)
                return -ENOMEM;
        *ret_key = key;
        *ret_value = TAKE_PTR(value);
        return 0;
}
