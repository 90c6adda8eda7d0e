"""Artifacts in the loopback W&B fake: what `run.log_artifact` (and a logged `wandb.Table`) sends.

The client (wandb-core 0.31) logs an artifact in this order, found by logging what arrives:
`ArtifactType` (does the name exist, and of which type), `CreateArtifact` (a pending version:
type, digest, metadata, aliases), `CreateArtifactManifest` (twice: the manifest's upload URL),
`CreateArtifactFiles` (upload URLs of the files), a PUT of every file and of
`wandb_manifest.json` to those URLs, then `CommitArtifact`. The fake keeps each version with
its type, metadata and aliases; the bytes land in the fake's `/storage/` (see `file_bytes`),
so a test can read back exactly what a run logged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

from .wandb_store import b64

if TYPE_CHECKING:
    from .wandb_fake import FakeWandb


@dataclass
class FakeArtifact:
    """One artifact version as the fake stores it."""

    entity: str
    project: str
    collection: str
    """The artifact's name without version (`mixture_name`, `run-<id>-<key>` for tables)."""
    type: str
    digest: str
    version: int
    seq: int
    run: Optional[str]
    """Id of the run that logged it."""
    metadata: dict[str, Any] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    state: str = "PENDING"
    description: Optional[str] = None
    files_md5: dict[str, Optional[str]] = field(default_factory=dict)
    """Files announced for upload: name -> base64 MD5 (their bytes land in the fake's storage)."""

    @property
    def id(self) -> str:
        return b64(f"Artifact:{self.seq}")


class ArtifactStore:
    """The artifact half of the fake: its resolvers share the fake's lock and request counts."""

    def __init__(self, fake: "FakeWandb") -> None:
        self._fake = fake
        self.versions: dict[str, FakeArtifact] = {}
        """Artifact id -> version."""

    def resolvers(self) -> dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]]:
        return {
            "ArtifactType": self._artifact_type,
            "CreateArtifact": self._create_artifact,
            "CreateArtifactManifest": self._create_manifest,
            "CreateArtifactFiles": self._create_files,
            "CommitArtifact": self._commit,
        }

    def file_bytes(self, artifact: FakeArtifact, name: str) -> Optional[bytes]:
        """The uploaded bytes of one file of `artifact` (None if it never arrived)."""
        return self._fake.storage.get(f"artifacts/{artifact.seq}/{name}")

    def manifest(self, artifact: FakeArtifact) -> dict[str, Any]:
        """The artifact's uploaded manifest (`contents`: file name -> digest, size)."""
        raw = self.file_bytes(artifact, "wandb_manifest.json")
        return json.loads(raw) if raw else {}

    def find(self, name: str, *, entity: Optional[str] = None, project: Optional[str] = None) -> list[FakeArtifact]:
        """Versions of the collection `name` (oldest first)."""
        entity, project = entity or self._fake.entity, project or self._fake.project
        found = [a for a in self.versions.values() if (a.entity, a.project, a.collection) == (entity, project, name)]
        return sorted(found, key=lambda a: a.version)

    def _by_name(self, entity: str, project: str, name: str) -> Optional[FakeArtifact]:
        collection, _, alias = name.partition(":")
        versions = self.find(collection, entity=entity, project=project)
        alias = alias or "latest"
        for artifact in reversed(versions):
            if alias in artifact.aliases or alias == f"v{artifact.version}":
                return artifact
        return None

    def _artifact_type(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        entity, project, _ = self._fake._project(variables)
        artifact = self._by_name(entity, project, str(variables.get("name")))
        node = self._fake._project_node(entity, project)
        node["artifact"] = {"artifactType": {"name": artifact.type}} if artifact else None
        return {"project": node}

    def _create_artifact(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        spec = variables.get("input") or {}
        entity = spec.get("entityName") or self._fake.entity
        project = spec.get("projectName") or self._fake.project
        collection = spec["artifactCollectionName"]
        existing = self.find(collection, entity=entity, project=project)
        same = next((a for a in existing if a.digest == spec.get("digest")), None)
        if same is None:
            self._fake._seq += 1
            same = FakeArtifact(
                entity=entity,
                project=project,
                collection=collection,
                type=spec.get("artifactTypeName") or "unspecified",
                digest=spec.get("digest") or "",
                version=len(existing),
                seq=self._fake._seq,
                run=spec.get("runName"),
                metadata=json.loads(spec["metadata"]) if spec.get("metadata") else {},
                description=spec.get("description"),
            )
            self.versions[same.id] = same
        for alias in spec.get("aliases") or []:
            name = alias.get("alias") if isinstance(alias, Mapping) else alias
            for other in existing:
                if name in other.aliases and other is not same:
                    other.aliases.remove(name)
            if name not in same.aliases:
                same.aliases.append(name)
        latest = self.find(collection, entity=entity, project=project)[-1]
        return {
            "createArtifact": {
                "artifact": {
                    "id": same.id,
                    "state": same.state,
                    "artifactSequence": {"latestArtifact": {"id": latest.id}},
                }
            }
        }

    def _storage_url(self, artifact: FakeArtifact, name: str) -> str:
        return f"{self._fake.url}/storage/artifacts/{artifact.seq}/{name}"

    def _get(self, artifact_id: Any) -> FakeArtifact:
        from .wandb_fake import _GraphQLError

        artifact = self.versions.get(str(artifact_id))
        if artifact is None:
            raise _GraphQLError(f"artifact {artifact_id!r} not found")
        return artifact

    def _create_manifest(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        artifact = self._get(variables.get("artifactID"))
        name = variables.get("name") or "wandb_manifest.json"
        file = {"id": b64(f"File:{artifact.seq}:{name}"), "uploadUrl": self._storage_url(artifact, name), "uploadHeaders": []}
        return {"createArtifactManifest": {"artifactManifest": {"id": b64(f"Manifest:{artifact.seq}"), "file": file}}}

    def _create_files(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """Upload URLs for an artifact's files (on this server's /storage/, like pre-signed ones)."""
        edges = []
        for spec in (variables.get("input") or {}).get("artifactFiles") or []:
            artifact = self._get(spec.get("artifactID"))
            name = spec["name"]
            artifact.files_md5[name] = spec.get("md5")
            edges.append({
                "node": {
                    "storagePath": f"artifacts/{artifact.seq}/{name}",
                    "uploadUrl": self._storage_url(artifact, name),
                    "uploadHeaders": [],
                    "uploadMultipartUrls": None,
                    "artifact": {"id": artifact.id},
                }
            })
        return {"createArtifactFiles": {"files": {"edges": edges}}}

    def _commit(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        artifact = self._get(variables.get("artifactID"))
        artifact.state = "COMMITTED"
        return {"commitArtifact": {"artifact": {"id": artifact.id, "digest": artifact.digest}}}
