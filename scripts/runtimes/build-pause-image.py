#!/usr/bin/python3
"""Builds a pause image as an OCI image-layout tar archive, locally: one layer holding a static binary (catatonit,
run as `catatonit -P`, the pause mode podman's own infra image uses), a config and a manifest. No registry is
involved; import the archive with `ctr -n k8s.io images import --snapshotter native ARCHIVE`.

usage: build-pause-image.py OUT.tar [NAME] [STATIC_BINARY]
"""
import hashlib
import io
import json
import sys
import tarfile

out = sys.argv[1]
name = sys.argv[2] if len(sys.argv) > 2 else "localhost/openpe-pause:test"
binary = sys.argv[3] if len(sys.argv) > 3 else "/usr/bin/catatonit"


def tar_bytes(members):
    """A reproducible tar of (name, bytes, mode) members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for path, data, mode in members:
            info = tarfile.TarInfo(path)
            info.mode, info.mtime, info.uid, info.gid = mode, 0, 0, 0
            if data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


with open(binary, "rb") as f:
    layer = tar_bytes([("pause", f.read(), 0o755), ("dev/", None, 0o755), ("proc/", None, 0o755),
                       ("sys/", None, 0o755), ("etc/", None, 0o755), ("tmp/", None, 0o1777)])
layer_digest = hashlib.sha256(layer).hexdigest()
config = json.dumps({
    "architecture": "amd64",
    "os": "linux",
    "config": {"Entrypoint": ["/pause", "-P"], "WorkingDir": "/", "Env": ["PATH=/"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_digest]},
    "history": [{"created_by": "scripts/runtimes/build-pause-image.py"}],
}, sort_keys=True).encode()
config_digest = hashlib.sha256(config).hexdigest()
manifest = json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + config_digest,
               "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + layer_digest,
                "size": len(layer)}],
}, sort_keys=True).encode()
manifest_digest = hashlib.sha256(manifest).hexdigest()
index = json.dumps({
    "schemaVersion": 2,
    "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + manifest_digest,
        "size": len(manifest), "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1]},
    }],
}, sort_keys=True).encode()

with open(out, "wb") as f:
    f.write(tar_bytes([
        ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}', 0o644),
        ("index.json", index, 0o644),
        ("blobs/", None, 0o755),
        ("blobs/sha256/", None, 0o755),
        ("blobs/sha256/" + layer_digest, layer, 0o644),
        ("blobs/sha256/" + config_digest, config, 0o644),
        ("blobs/sha256/" + manifest_digest, manifest, 0o644),
    ]))
print(name)
