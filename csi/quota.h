/* Private to csi/: per-tenant quotas and the pool's fill thresholds, read
 * from a JSON file (re-read on SIGHUP):
 *
 *   {
 *     "pool":    {"maxDataPercent": 90, "maxMetadataPercent": 90,
 *                 "maxOverprovisionPercent": 400},
 *     "default": {"maxBytes": "100Gi", "maxVolumes": 50},
 *     "tenants": {"team-a": {"maxBytes": "1Ti", "maxVolumes": 200}}
 *   }
 *
 * Every key is optional; a missing limit (or 0) is no limit. Byte values
 * are integers or strings with a Ki/Mi/Gi/Ti/Pi suffix. A tenant entry
 * replaces the default entry field by field. */
#ifndef THINVAULT_CSI_QUOTA_H
#define THINVAULT_CSI_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
        uint64_t max_bytes;   /* 0: unlimited */
        uint64_t max_volumes; /* 0: unlimited */
} tv_tenant_quota;

typedef struct {
        char *tenant;
        tv_tenant_quota quota;
} tv_tenant_override;

typedef struct {
        unsigned max_data_percent;          /* default 90 */
        unsigned max_metadata_percent;      /* default 90 */
        unsigned max_overprovision_percent; /* default 0: off */
        tv_tenant_quota dflt;
        tv_tenant_override *tenants;
        size_t n_tenants;
} tv_quota_config;

/* Defaults: data and metadata 90 %, no overprovision cap, no quotas. */
void quota_config_init(tv_quota_config *c);
void quota_config_clear(tv_quota_config *c);

/* Parse the JSON text. Returns 0 and fills *c (which the caller clears),
 * or -EINVAL with a message naming the bad key in err. */
int quota_config_parse(const char *json, tv_quota_config *c, char *err, size_t err_size);

/* Read and parse the file at path. */
int quota_config_load(const char *path, tv_quota_config *c, char *err, size_t err_size);

/* The quota in force for tenant. */
tv_tenant_quota quota_for(const tv_quota_config *c, const char *tenant);

/* Would a tenant holding `used_bytes` in `used_volumes` volumes stay within
 * q after adding `add_bytes` and `add_volumes`? Returns 0, or -EDQUOT with
 * the limit hit written to msg. Pure. */
int quota_check(const tv_tenant_quota *q, const char *tenant, uint64_t used_bytes, uint64_t used_volumes,
                uint64_t add_bytes, uint64_t add_volumes, char *msg, size_t msg_size);

/* "12 GiB", "512 MiB", "1536 B": for messages. Returns buf. */
const char *format_bytes(uint64_t v, char *buf, size_t size);

#endif
