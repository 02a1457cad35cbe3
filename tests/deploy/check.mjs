// Validates every object in deploy/ against the Kubernetes API schema of a
// current release (npm kubernetes-models) and checks the cross-references
// that no schema sees: driver names, the CSI socket path, plugin flags,
// probe and metrics ports, RBAC references, kustomization lists, and the
// classes' parameters, which the running plugin is asked about.
// Run by tests/deploy/check, which starts the plugin and sets:
//   TV_DEPLOY_DIR TV_NODE_MODULES TV_CTL TV_ENDPOINT TV_VG TV_HELP
// Prints PASS/FAIL lines; exit status 1 when anything failed.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative, dirname, basename } from "node:path";
import { pathToFileURL } from "node:url";
import { spawnSync } from "node:child_process";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const DEPLOY = env("TV_DEPLOY_DIR");
const NM = env("TV_NODE_MODULES");
const CTL = env("TV_CTL");
const ENDPOINT = env("TV_ENDPOINT");
const VG = env("TV_VG");
const HELP = readFileSync(env("TV_HELP"), "utf8");

let failed = 0;
function result(name, problems) {
  if (problems.length === 0) {
    console.log(`PASS ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}`);
    for (const p of problems) console.log(`    ${p}`);
  }
}
// check(name, fn): fn returns a list of problems (or throws one).
async function check(name, fn) {
  let problems;
  try {
    problems = await fn();
  } catch (e) {
    problems = [String(e && e.stack ? e.stack.split("\n").slice(0, 3).join(" | ") : e)];
  }
  result(name, problems);
}
const mod = (p) => import(pathToFileURL(join(NM, p)).href);
const { parseAllDocuments } = await mod("yaml/dist/index.js");
const Ajv = (await mod("ajv/dist/ajv.js")).default;

// ---- load every YAML document under deploy/ -------------------------------
function yamlFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir).sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(e)) out.push(p);
  }
  return out;
}
const files = yamlFiles(DEPLOY);
const objects = []; // { file, obj }
const kustomizations = []; // { file, obj }
await check("yaml_parses_every_file_in_deploy", () => {
  const problems = [];
  for (const f of files) {
    // YAML 1.1, as kubectl reads it (sigs.k8s.io/yaml): 0400 is octal.
    const docs = parseAllDocuments(readFileSync(f, "utf8"), { version: "1.1" });
    for (const d of docs) {
      if (d.errors.length) {
        problems.push(`${relative(DEPLOY, f)}: ${d.errors[0].message}`);
        continue;
      }
      const obj = d.toJS();
      if (obj === null || obj === undefined) continue;
      if (basename(f) === "kustomization.yaml") kustomizations.push({ file: f, obj });
      else objects.push({ file: f, obj });
    }
  }
  if (objects.length === 0) problems.push("no objects found");
  return problems;
});
const where = (o) => `${relative(DEPLOY, o.file)} ${o.obj.kind}/${o.obj.metadata?.name}`;
const ofKind = (k) => objects.filter((o) => o.obj.kind === k).map((o) => o.obj);

// ---- schema validation ------------------------------------------------------
const ajv = new Ajv({ allErrors: true, strict: true });
const snapshotClassSchema = ajv.compile(
  JSON.parse(readFileSync(new URL("./volumesnapshotclass.schema.json", import.meta.url), "utf8")),
);
async function modelFor(apiVersion, kind) {
  if (apiVersion === "monitoring.coreos.com/v1")
    return (await mod(`@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${kind}.js`))[kind];
  const path = apiVersion.includes("/") ? apiVersion : `v1`;
  if (apiVersion !== "v1" && !apiVersion.includes("/")) return undefined;
  return (await mod(`kubernetes-models/${path}/${kind}.js`))[kind];
}
for (const o of objects) {
  await check(`schema ${where(o)}`, async () => {
    const { apiVersion, kind } = o.obj;
    if (apiVersion === "snapshot.storage.k8s.io/v1" && kind === "VolumeSnapshotClass") {
      return snapshotClassSchema(o.obj)
        ? []
        : snapshotClassSchema.errors.map((e) => `${e.instancePath || "/"} ${e.message}`);
    }
    let Model;
    try {
      Model = await modelFor(apiVersion, kind);
    } catch {
      Model = undefined;
    }
    if (!Model) return [`no schema for ${apiVersion} ${kind} (unknown kind or version)`];
    new Model(o.obj).validate(); // throws with the schema errors
    return [];
  });
}

// ---- kustomization: lists exactly the files beside it ------------------------
for (const k of kustomizations) {
  await check(`kustomization_lists_every_file ${relative(DEPLOY, k.file)}`, () => {
    const dir = dirname(k.file);
    const problems = [];
    if (k.obj.apiVersion !== "kustomize.config.k8s.io/v1beta1" || k.obj.kind !== "Kustomization")
      problems.push(`not a kustomize.config.k8s.io/v1beta1 Kustomization`);
    const listed = new Set(k.obj.resources || []);
    const present = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && f !== "kustomization.yaml");
    for (const f of present) if (!listed.has(f)) problems.push(`${f} is not listed`);
    for (const f of listed) if (!present.includes(f)) problems.push(`${f} is listed but does not exist`);
    return problems;
  });
}

// ---- the DaemonSet's containers ------------------------------------------------
const ds = ofKind("DaemonSet")[0];
const pod = ds?.spec?.template?.spec ?? {};
const containers = pod.containers ?? [];
const byImage = (re) => containers.find((c) => re.test(c.image || ""));
const plugin = containers.find((c) => (c.args || []).some((a) => a.startsWith("--endpoint=")));
const flag = (c, name) => {
  const a = (c?.args || []).find((x) => x === `--${name}` || x.startsWith(`--${name}=`));
  return a === undefined ? undefined : a.includes("=") ? a.slice(a.indexOf("=") + 1) : "true";
};
const sidecars = {
  registrar: byImage(/\/csi-node-driver-registrar:/),
  provisioner: byImage(/\/csi-provisioner:/),
  resizer: byImage(/\/csi-resizer:/),
  snapshotter: byImage(/\/csi-snapshotter:/),
  livenessprobe: byImage(/\/livenessprobe:/),
};
const volumeByName = (n) => (pod.volumes || []).find((v) => v.name === n);
// The volume (and its path inside the container) holding a container path.
function mountOf(c, path) {
  let best;
  for (const m of c?.volumeMounts || []) {
    const mp = m.mountPath.replace(/\/$/, "");
    if ((path === mp || path.startsWith(mp + "/")) && (!best || mp.length > best.mountPath.length))
      best = { ...m, mountPath: mp };
  }
  return best;
}

await check("daemonset_has_plugin_and_every_sidecar", () => {
  const problems = [];
  if (ofKind("DaemonSet").length !== 1) problems.push(`expected one DaemonSet, found ${ofKind("DaemonSet").length}`);
  if (!plugin) problems.push("no container runs the plugin (--endpoint=)");
  for (const [n, c] of Object.entries(sidecars)) if (!c) problems.push(`no ${n} container`);
  return problems;
});

await check("sidecar_images_pinned_to_releases", () =>
  Object.entries(sidecars)
    .filter(([, c]) => c && !/^registry\.k8s\.io\/sig-storage\/[a-z-]+:v\d+\.\d+\.\d+$/.test(c.image))
    .map(([n, c]) => `${n}: ${c.image} is not registry.k8s.io/sig-storage/NAME:vX.Y.Z`),
);

await check("plugin_flags_are_ones_thinvault_csi_accepts", () => {
  const known = new Set([...HELP.matchAll(/^\s+(--[a-z0-9-]+)/gm)].map((m) => m[1]));
  return (plugin?.args || [])
    .map((a) => a.split("=")[0])
    .filter((f) => !known.has(f))
    .map((f) => `${f} is not in thinvault-csi --help`);
});

await check("plugin_is_privileged_with_host_mounts", () => {
  const problems = [];
  if (plugin?.securityContext?.privileged !== true) problems.push("plugin container is not privileged");
  const want = {
    "/dev": "/dev",
    "/run/lvm": "/run/lvm",
    "/run/cryptsetup": "/run/cryptsetup",
    "/etc/lvm": "/etc/lvm",
    "/sys/fs/cgroup": "/sys/fs/cgroup",
  };
  for (const [path, host] of Object.entries(want)) {
    const m = (plugin?.volumeMounts || []).find((x) => x.mountPath === path);
    const v = m && volumeByName(m.name);
    if (!v?.hostPath || v.hostPath.path !== host) problems.push(`${path} is not the host's ${host}`);
  }
  const kdir = flag(plugin, "kubelet-dir") ?? "/var/lib/kubelet";
  const km = (plugin?.volumeMounts || []).find((x) => x.mountPath === kdir);
  if (!km) problems.push(`--kubelet-dir ${kdir} is not mounted`);
  else {
    if (km.mountPropagation !== "Bidirectional") problems.push(`${kdir} is mounted without Bidirectional propagation`);
    if (volumeByName(km.name)?.hostPath?.path !== kdir) problems.push(`${kdir} is not the host's ${kdir}`);
  }
  return problems;
});

await check("master_key_is_a_read_only_0400_secret", () => {
  const key = flag(plugin, "master-key");
  if (!key) return ["plugin has no --master-key"];
  const m = mountOf(plugin, key);
  const v = m && volumeByName(m.name);
  const problems = [];
  if (!v?.secret) return [`${key} is not inside a Secret volume`];
  if (!m.readOnly) problems.push("master key mount is not readOnly");
  const item = (v.secret.items || []).find((i) => i.path === key.slice(m.mountPath.length + 1));
  const mode = item?.mode ?? v.secret.defaultMode;
  if (mode !== 0o400) problems.push(`master key file mode is ${mode?.toString(8)}, not 0400`);
  if (!item && v.secret.items) problems.push(`no Secret item is mounted at ${key}`);
  return problems;
});

await check("socket_path_agrees_between_plugin_registrar_and_sidecars", () => {
  const problems = [];
  const ep = flag(plugin, "endpoint") || "";
  if (!ep.startsWith("unix://")) return [`plugin --endpoint ${ep} is not unix://`];
  const sock = ep.slice("unix://".length);
  const pm = mountOf(plugin, sock);
  const hostDir = pm && volumeByName(pm.name)?.hostPath?.path;
  if (!hostDir) return [`plugin socket ${sock} is not on a hostPath volume`];
  const hostSock = join(hostDir, relative(pm.mountPath, sock));
  for (const [n, c] of Object.entries(sidecars)) {
    if (!c) continue;
    const addr = flag(c, "csi-address");
    if (addr !== sock) problems.push(`${n} --csi-address=${addr}, plugin serves ${sock}`);
    const m = mountOf(c, addr || "");
    if (!m || m.name !== pm.name || relative(m.mountPath, addr) !== relative(pm.mountPath, sock))
      problems.push(`${n} does not see the plugin's socket volume at ${addr}`);
  }
  const reg = flag(sidecars.registrar, "kubelet-registration-path");
  if (reg !== hostSock) problems.push(`registrar --kubelet-registration-path=${reg}, the socket is ${hostSock} on the host`);
  const rm = (sidecars.registrar?.volumeMounts || []).find((m) => m.mountPath === "/registration");
  if (volumeByName(rm?.name)?.hostPath?.path !== join(flag(plugin, "kubelet-dir") ?? "/var/lib/kubelet", "plugins_registry"))
    problems.push("registrar's /registration is not the kubelet's plugins_registry");
  if (!hostSock.startsWith(join(flag(plugin, "kubelet-dir") ?? "/var/lib/kubelet", "plugins") + "/"))
    problems.push(`socket ${hostSock} is not under the kubelet's plugins directory`);
  return problems;
});

await check("node_deployment_sidecars_know_their_node", () => {
  const problems = [];
  for (const n of ["provisioner", "snapshotter"]) {
    const c = sidecars[n];
    if (flag(c, "node-deployment") !== "true") problems.push(`${n} lacks --node-deployment=true`);
    const e = (c?.env || []).find((x) => x.name === "NODE_NAME");
    if (e?.valueFrom?.fieldRef?.fieldPath !== "spec.nodeName") problems.push(`${n} has no NODE_NAME from spec.nodeName`);
  }
  const pe = (plugin?.env || []).find((x) => x.name === "NODE_NAME");
  if (flag(plugin, "node-id") !== "$(NODE_NAME)" || pe?.valueFrom?.fieldRef?.fieldPath !== "spec.nodeName")
    problems.push("plugin --node-id is not the node's name: the provisioner's topology would not match");
  const p = sidecars.provisioner;
  for (const f of ["extra-create-metadata", "enable-capacity"])
    if (flag(p, f) !== "true") problems.push(`provisioner lacks --${f}=true`);
  if (flag(p, "capacity-ownerref-level") === undefined) problems.push("provisioner lacks --capacity-ownerref-level");
  for (const e of ["NAMESPACE", "POD_NAME"])
    if (!(p?.env || []).some((x) => x.name === e)) problems.push(`provisioner lacks ${e} (capacity owner)`);
  return problems;
});

await check("probes_and_metrics_ports_agree", () => {
  const problems = [];
  const portOf = (c, nameOrNum) =>
    typeof nameOrNum === "number" ? nameOrNum : (c?.ports || []).find((p) => p.name === nameOrNum)?.containerPort;
  const lpPort = Number((flag(sidecars.livenessprobe, "http-endpoint") || ":9808").split(":").pop());
  for (const kind of ["livenessProbe", "readinessProbe"]) {
    const pr = plugin?.[kind]?.httpGet;
    if (!pr) problems.push(`plugin has no ${kind} httpGet`);
    else if (portOf(plugin, pr.port) !== lpPort || pr.path !== "/healthz")
      problems.push(`plugin ${kind} asks port ${pr.port}${pr.path}, livenessprobe serves :${lpPort}/healthz`);
  }
  const ma = flag(plugin, "metrics-address");
  const mport = ma && Number(ma.split(":").pop());
  if (!mport) problems.push("plugin has no --metrics-address HOST:PORT");
  if (mport === lpPort) problems.push(`metrics and livenessprobe both on port ${lpPort}`);
  const svc = ofKind("Service").find((s) => s.metadata.name === "thinvault-metrics");
  if (!svc) return [...problems, "no thinvault-metrics Service"];
  const sp = svc.spec.ports?.[0];
  if (portOf(plugin, sp?.targetPort) !== mport) problems.push(`Service targetPort ${sp?.targetPort} is not the metrics port ${mport}`);
  if (svc.metadata.annotations?.["prometheus.io/port"] !== String(mport)) problems.push("prometheus.io/port annotation disagrees");
  const labels = ds?.spec?.template?.metadata?.labels || {};
  for (const [k, v] of Object.entries(svc.spec.selector || {}))
    if (labels[k] !== v) problems.push(`Service selector ${k}=${v} does not select the DaemonSet's pods`);
  for (const sm of ofKind("ServiceMonitor")) {
    const ml = sm.spec.selector?.matchLabels || {};
    for (const [k, v] of Object.entries(ml))
      if (svc.metadata.labels?.[k] !== v) problems.push(`ServiceMonitor selector ${k}=${v} does not select the Service`);
    if (!sm.spec.endpoints?.some((e) => e.port === sp?.name)) problems.push("ServiceMonitor endpoint port is not the Service's");
  }
  return problems;
});

await check("driver_name_agrees_everywhere_and_with_the_plugin", () => {
  const problems = [];
  const r = ctl(["csi", "Identity.GetPluginInfo"]);
  if (r.status !== 0) return [`GetPluginInfo failed: ${r.stderr}`];
  const name = JSON.parse(r.stdout).name;
  const drivers = ofKind("CSIDriver");
  if (drivers.length !== 1) problems.push(`expected one CSIDriver, found ${drivers.length}`);
  if (drivers[0]?.metadata.name !== name) problems.push(`CSIDriver ${drivers[0]?.metadata.name} != plugin's ${name}`);
  for (const sc of ofKind("StorageClass"))
    if (sc.provisioner !== name) problems.push(`StorageClass ${sc.metadata.name} provisioner ${sc.provisioner}`);
  for (const c of ofKind("VolumeSnapshotClass"))
    if (c.driver !== name) problems.push(`VolumeSnapshotClass ${c.metadata.name} driver ${c.driver}`);
  for (const c of ofKind("VolumeAttributesClass"))
    if (c.driverName !== name) problems.push(`VolumeAttributesClass ${c.metadata.name} driverName ${c.driverName}`);
  if (ofKind("StorageClass").length === 0) problems.push("no StorageClass");
  return problems;
});

await check("rbac_and_namespace_references_exist", () => {
  const problems = [];
  const nss = new Set(ofKind("Namespace").map((n) => n.metadata.name));
  const sas = new Set(ofKind("ServiceAccount").map((s) => `${s.metadata.namespace}/${s.metadata.name}`));
  for (const o of objects) {
    const ns = o.obj.metadata?.namespace;
    if (ns && !nss.has(ns)) problems.push(`${where(o)} is in namespace ${ns}, which deploy/ does not create`);
  }
  if (!sas.has(`${ds?.metadata?.namespace}/${pod.serviceAccountName}`))
    problems.push(`DaemonSet's ServiceAccount ${pod.serviceAccountName} does not exist`);
  for (const b of [...ofKind("ClusterRoleBinding"), ...ofKind("RoleBinding")]) {
    for (const s of b.subjects || [])
      if (s.kind === "ServiceAccount" && !sas.has(`${s.namespace ?? b.metadata.namespace}/${s.name}`))
        problems.push(`${b.kind} ${b.metadata.name}: ServiceAccount ${s.namespace}/${s.name} does not exist`);
    const roles =
      b.roleRef.kind === "ClusterRole"
        ? ofKind("ClusterRole")
        : ofKind("Role").filter((r) => r.metadata.namespace === b.metadata.namespace);
    if (!roles.some((r) => r.metadata.name === b.roleRef.name))
      problems.push(`${b.kind} ${b.metadata.name}: ${b.roleRef.kind} ${b.roleRef.name} does not exist`);
  }
  for (const r of [...ofKind("ClusterRole"), ...ofKind("Role")]) {
    for (const rule of r.rules || []) {
      if ((rule.verbs || []).includes("*") || (rule.resources || []).includes("*"))
        problems.push(`${r.kind} ${r.metadata.name} grants a wildcard`);
      if ((rule.resources || []).includes("secrets")) problems.push(`${r.kind} ${r.metadata.name} reads Secrets`);
    }
    const bound = [...ofKind("ClusterRoleBinding"), ...ofKind("RoleBinding")].some(
      (b) => b.roleRef.kind === r.kind && b.roleRef.name === r.metadata.name,
    );
    if (!bound) problems.push(`${r.kind} ${r.metadata.name} is bound to nobody`);
  }
  return problems;
});

// ---- the classes' parameters, asked of the plugin --------------------------------
// What the sidecars send: external-provisioner removes the csi.storage.k8s.io/
// keys it interprets (secrets, fstype) and, with --extra-create-metadata, adds
// the PVC's and PV's names; VolumeAttributesClass parameters go as
// mutable_parameters. The plugin has no volume group here, so a request whose
// parameters it accepts fails later, with another code than INVALID_ARGUMENT.
function ctl(args) {
  const r = spawnSync(CTL, ["--endpoint", ENDPOINT, "--timeout", "20", ...args], { encoding: "utf8" });
  return { status: r.status, stdout: r.stdout || "", stderr: (r.stderr || "").trim() };
}
const reservedPrefix = "csi.storage.k8s.io/";
const sentParams = (params, extra) => {
  const out = {};
  for (const [k, v] of Object.entries(params || {})) if (!k.startsWith(reservedPrefix)) out[k] = String(v);
  return { ...out, ...extra };
};
const provisionerMeta =
  flag(sidecars.provisioner, "extra-create-metadata") === "true"
    ? {
        "csi.storage.k8s.io/pvc/name": "data",
        "csi.storage.k8s.io/pvc/namespace": "tenant-a",
        "csi.storage.k8s.io/pv/name": "pvc-0b7f3c2e",
      }
    : {};
const snapshotterMeta =
  flag(sidecars.snapshotter, "extra-create-metadata") === "true"
    ? {
        "csi.storage.k8s.io/volumesnapshot/name": "snap",
        "csi.storage.k8s.io/volumesnapshot/namespace": "tenant-a",
        "csi.storage.k8s.io/volumesnapshotcontent/name": "snapcontent-1",
      }
    : {};
const createVolume = (params, mutable, block) =>
  ctl([
    "csi",
    "Controller.CreateVolume",
    "--json",
    JSON.stringify({
      name: "pvc-0b7f3c2e",
      capacityRange: { requiredBytes: 1 << 30 },
      volumeCapabilities: [
        block
          ? { block: {}, accessMode: { mode: "SINGLE_NODE_WRITER" } }
          : { mount: {}, accessMode: { mode: "SINGLE_NODE_WRITER" } },
      ],
      parameters: params,
      ...(mutable ? { mutableParameters: mutable } : {}),
    }),
  ]);
const refusedAsInvalid = (r) => r.status !== 0 && /^INVALID_ARGUMENT/.test(r.stderr);

await check("plugin_refuses_an_unknown_parameter (control for the checks below)", () => {
  const r = createVolume(sentParams({ fsType: "ext4", iopz: "1" }, provisionerMeta), undefined, false);
  return refusedAsInvalid(r) && /iopz/.test(r.stderr) ? [] : [`expected INVALID_ARGUMENT about iopz, got: ${r.stderr || r.stdout}`];
});
for (const sc of ofKind("StorageClass")) {
  await check(`plugin_accepts_storageclass_parameters ${sc.metadata.name}`, () => {
    const problems = [];
    const params = sentParams(sc.parameters, provisionerMeta);
    for (const block of [false, true]) {
      const r = createVolume(params, undefined, block);
      if (r.status === 0) problems.push("CreateVolume succeeded without a volume group?");
      else if (refusedAsInvalid(r)) problems.push(`${block ? "block" : "mount"}: ${r.stderr}`);
    }
    for (const vac of ofKind("VolumeAttributesClass")) {
      const r = createVolume(params, sentParams(vac.parameters, {}), false);
      if (refusedAsInvalid(r)) problems.push(`with VolumeAttributesClass ${vac.metadata.name}: ${r.stderr}`);
    }
    return problems;
  });
}
for (const vac of ofKind("VolumeAttributesClass")) {
  await check(`plugin_accepts_volumeattributesclass_parameters ${vac.metadata.name}`, () => {
    const r = ctl([
      "csi",
      "Controller.ControllerModifyVolume",
      "--json",
      JSON.stringify({ volumeId: `${VG}:pvc-0b7f3c2e`, mutableParameters: sentParams(vac.parameters, {}) }),
    ]);
    return refusedAsInvalid(r) ? [r.stderr] : [];
  });
}
for (const vsc of ofKind("VolumeSnapshotClass")) {
  await check(`plugin_accepts_volumesnapshotclass_parameters ${vsc.metadata.name}`, () => {
    const r = ctl([
      "csi",
      "Controller.CreateSnapshot",
      "--json",
      JSON.stringify({
        name: "snapshot-1",
        sourceVolumeId: `${VG}:pvc-0b7f3c2e`,
        parameters: sentParams(vsc.parameters, snapshotterMeta),
      }),
    ]);
    return refusedAsInvalid(r) ? [r.stderr] : [];
  });
}

process.exit(failed ? 1 : 0);
