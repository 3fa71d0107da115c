#!/usr/bin/env bash
# Makes the local stand-in for python:3.11-slim where no container registry is reachable: Debian
# bookworm (minbase) with Debian's python3, venv and pip, committed into buildah's storage as
# $BASE_IMAGE. Built once: an existing image is kept (delete it with `buildah rmi` to rebuild).
set -euo pipefail
BASE_IMAGE=${BASE_IMAGE:-localhost/inferencefleet-base:bookworm}
BUILDAH=(buildah --storage-driver vfs)
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if "${BUILDAH[@]}" inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "base image $BASE_IMAGE: cached"
  exit 0
fi
rootfs=$(mktemp -d /var/tmp/inferencefleet-base.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
  bookworm "$rootfs" "$MIRROR"
# What a slim runtime image does not need: package lists, docs, man pages, locales.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
container=$("${BUILDAH[@]}" from scratch)
mnt=$("${BUILDAH[@]}" mount "$container")
cp -a "$rootfs"/. "$mnt"/
"${BUILDAH[@]}" umount "$container" >/dev/null
"${BUILDAH[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 --cmd python3 --os linux --arch "$(dpkg --print-architecture)" "$container"
"${BUILDAH[@]}" commit --rm "$container" "$BASE_IMAGE"
echo "base image $BASE_IMAGE: built"
