#!/usr/bin/env python3
"""Turns Gateway/kubernetes/deployment.yaml into `podman run` arguments, for test-image.sh.

    pod-to-podman.py --kubernetes DIR --container-config FILE --image IMAGE --image-user UID:GID
                     --volumes DIR --out FILE

It runs the pod the way the kubelet would, as far as one machine without Kubernetes can:
each container's command, env, user, group, fsGroup, read-only root file system, dropped
capabilities and no-new-privileges become podman flags; each emptyDir becomes an empty folder
under --volumes (mode 2777, group fsGroup, as the kubelet makes them); each configMap volume
becomes a folder holding the ConfigMap's data. The image named `portico` is replaced by --image.

Before that it checks the facts the image and the manifests must agree on, and exits 1 naming
the file and the key when one does not hold:
  - the pod runs as the image's user (10001) and as non-root;
  - every container has a read-only root file system, no privilege escalation, no capabilities;
  - the gateway's --functions folder is on a writable emptyDir (a function's build writes there);
  - the ConfigMap's gateway.yaml is Gateway/container-gateway.yaml, byte for byte.

FILE is written as bash: `init_0=(...)`, `init_count=N`, `main=(...)` (the arguments after
`podman run`, starting with the flags and ending with the image and its command),
`volumes=("NAME|FOLDER|SIZE_LIMIT_BYTES" ...)` and `functions_folder=PATH` (inside the pod).
"""
import argparse
import os
import shlex
import sys

import yaml


def fail(file, key, message):
    print(f"{file}: {key}: {message}", file=sys.stderr)
    sys.exit(1)


def quantity_bytes(text):
    """A Kubernetes quantity such as 64Mi or 1G, in bytes."""
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 1000, "M": 1000**2, "G": 1000**3}
    text = str(text)
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def load_documents(path):
    with open(path, encoding="utf-8") as handle:
        return [document for document in yaml.safe_load_all(handle) if document]


def find_kind(folder, kind, name=None):
    for entry in sorted(os.listdir(folder)):
        if not entry.endswith(".yaml"):
            continue
        path = os.path.join(folder, entry)
        for document in load_documents(path):
            if document.get("kind") == kind and (name is None or document["metadata"]["name"] == name):
                return path, document
    fail(folder, kind, f"no {kind}{' named ' + name if name else ''} in any .yaml file")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubernetes", required=True)
    parser.add_argument("--container-config", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--image-user", required=True)
    parser.add_argument("--volumes", required=True)
    parser.add_argument("--out", required=True)
    options = parser.parse_args()

    path, deployment = find_kind(options.kubernetes, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    security = pod.get("securityContext", {})
    image_uid, image_gid = (int(part) for part in options.image_user.split(":"))

    if security.get("runAsNonRoot") is not True:
        fail(path, "spec.template.spec.securityContext.runAsNonRoot", "must be true")
    if security.get("runAsUser") != image_uid or security.get("runAsGroup") != image_gid:
        fail(path, "spec.template.spec.securityContext.runAsUser",
             f"the pod runs as {security.get('runAsUser')}:{security.get('runAsGroup')}, "
             f"the image's user is {image_uid}:{image_gid}")
    fs_group = security.get("fsGroup")

    # Volumes: host folders standing in for what the kubelet would mount.
    volume_folders = {}
    volume_lines = []
    writable = set()
    for volume in pod.get("volumes", []):
        name = volume["name"]
        folder = os.path.join(options.volumes, name)
        os.makedirs(folder)
        if "emptyDir" in volume:
            os.chown(folder, 0, fs_group if fs_group is not None else 0)
            os.chmod(folder, 0o2777 if fs_group is not None else 0o777)
            limit = volume["emptyDir"].get("sizeLimit")
            volume_lines.append(f"{name}|{folder}|{quantity_bytes(limit) if limit else 0}")
            writable.add(name)
        elif "configMap" in volume:
            map_path, config_map = find_kind(options.kubernetes, "ConfigMap", volume["configMap"]["name"])
            for key, text in config_map.get("data", {}).items():
                with open(os.path.join(folder, key), "w", encoding="utf-8") as handle:
                    handle.write(text)
            if "gateway.yaml" in config_map.get("data", {}):
                with open(options.container_config, encoding="utf-8") as handle:
                    if handle.read() != config_map["data"]["gateway.yaml"]:
                        fail(map_path, "data.gateway.yaml",
                             f"differs from {options.container_config}; keep the two in step")
        else:
            fail(path, f"spec.template.spec.volumes[{name}]", "only emptyDir and configMap volumes can be run here")
        volume_folders[name] = folder

    def podman_arguments(container, where):
        context = container.get("securityContext", {})
        if context.get("readOnlyRootFilesystem") is not True:
            fail(path, f"{where}.securityContext.readOnlyRootFilesystem", "must be true")
        if context.get("allowPrivilegeEscalation") is not False:
            fail(path, f"{where}.securityContext.allowPrivilegeEscalation", "must be false")
        if "ALL" not in context.get("capabilities", {}).get("drop", []):
            fail(path, f"{where}.securityContext.capabilities.drop", "must drop ALL")
        image_name = container["image"].split(":")[0]
        if image_name != "portico":
            fail(path, f"{where}.image", f"'{container['image']}' is not the portico image")
        uid = context.get("runAsUser", security.get("runAsUser"))
        gid = context.get("runAsGroup", security.get("runAsGroup"))
        arguments = ["--user", f"{uid}:{gid}"]
        if fs_group is not None:
            arguments += ["--group-add", str(fs_group)]
        # Kubernetes gives a read-only container no writable /tmp of its own; podman would.
        arguments += ["--read-only", "--read-only-tmpfs=false", "--cap-drop", "ALL",
                      "--security-opt", "no-new-privileges"]
        for variable in container.get("env", []):
            arguments += ["-e", f"{variable['name']}={variable['value']}"]
        for mount in container.get("volumeMounts", []):
            read_only = mount.get("readOnly", False) or mount["name"] not in writable
            arguments += ["-v", f"{volume_folders[mount['name']]}:{mount['mountPath']}" + (":ro" if read_only else "")]
        command = container.get("command")
        if not command:
            fail(path, f"{where}.command", "the test runs containers with an explicit command only")
        arguments += ["--entrypoint", command[0], options.image] + command[1:] + container.get("args", [])
        return arguments

    lines = []
    init_containers = pod.get("initContainers", [])
    for index, container in enumerate(init_containers):
        arguments = podman_arguments(container, f"spec.template.spec.initContainers[{index}]")
        lines.append(f"init_{index}=({' '.join(shlex.quote(a) for a in arguments)})")
    lines.append(f"init_count={len(init_containers)}")

    containers = [c for c in pod["containers"] if c["image"].split(":")[0] == "portico"]
    if len(containers) != 1:
        fail(path, "spec.template.spec.containers", "expected one portico container")
    gateway = containers[0]
    where = "spec.template.spec.containers[portico]"
    command = gateway.get("command", []) + gateway.get("args", [])
    if "--functions" not in command:
        fail(path, f"{where}.command", "has no --functions folder")
    functions_folder = command[command.index("--functions") + 1]
    on_writable_volume = [
        mount for mount in gateway.get("volumeMounts", [])
        if mount["name"] in writable and not mount.get("readOnly", False)
        and (functions_folder + "/").startswith(mount["mountPath"].rstrip("/") + "/")
    ]
    if not on_writable_volume:
        fail(path, f"{where}.volumeMounts",
             f"the functions folder {functions_folder} is on no writable emptyDir, so no function can build")
    lines.append(f"main=({' '.join(shlex.quote(a) for a in podman_arguments(gateway, where))})")
    lines.append(f"volumes=({' '.join(shlex.quote(v) for v in volume_lines)})")
    lines.append(f"functions_folder={shlex.quote(functions_folder)}")
    with open(options.out, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
