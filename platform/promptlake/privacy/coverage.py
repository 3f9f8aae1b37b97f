"""Which stored text the PII policy reaches, and why the rest is left alone.

Every text-bearing column of the schema is either written by a user or a model, and then
listed in :data:`promptlake.privacy.anonymize.COVERED` (the policy runs on it at ingest and
in ``anonymize()``), or listed here in :data:`EXEMPT` with the reason it is not. The test
``tests/test_pii_coverage.py`` walks the SQLAlchemy models and fails for a column in
neither list, so a new column has to be decided on when it is added.
"""

from __future__ import annotations

from .anonymize import COVERED

_CHOSEN = "an identifier or label the application or an operator chooses, not free text"
_DERIVED = "written by promptlake itself (hashes, enums, settings, findings metadata)"
_CORPUS = "the project's RAG document corpus, added by admins, not user or model text"
_WRITTEN_CLEAN = "the live policy's operators are applied when it is written (text_anonymizer)"
_GRAPH = "extracted from text already under the policy; values it removes never enter"

EXEMPT: dict[str, str] = {
    "projects.name": _CHOSEN, "projects.description": _CHOSEN, "projects.settings": _DERIVED,
    "audit_log.principal": _CHOSEN, "audit_log.action": _DERIVED,
    "audit_log.target": "ids and keyed hashes, never raw values", "audit_log.details": _DERIVED,
    "dedup_indexes.key": _DERIVED, "dedup_indexes.method": _DERIVED,
    "dedup_indexes.field": _DERIVED, "dedup_indexes.params": _DERIVED,
    "dedup_indexes.last_run": _DERIVED,
    "documents.source": _CORPUS, "documents.title": _CORPUS, "documents.format": _DERIVED,
    "documents.content": _CORPUS, "documents.metadata": _CORPUS,
    "document_chunks.text": _CORPUS, "document_chunks.embedder": _DERIVED,
    "models.name": _CHOSEN, "models.provider": _CHOSEN, "models.version": _CHOSEN,
    "models.uri": _CHOSEN, "models.metadata": _CHOSEN,
    "pii_policies.operators": _DERIVED, "pii_policies.apply_at": _DERIVED,
    "pii_policies.detectors": _DERIVED, "pii_policies.created_by": _CHOSEN,
    "project_members.principal": _CHOSEN, "project_members.role": _DERIVED,
    "project_members.granted_by": _CHOSEN,
    "prompt_templates.name": _CHOSEN, "prompt_templates.description": _CHOSEN,
    "prompt_versions.template": "written by developers; variables filled in by render() reach"
                                " the policy as the logged prompt",
    "prompt_versions.variables": _DERIVED, "prompt_versions.metadata": _CHOSEN,
    "runs.name": _CHOSEN, "runs.params": _CHOSEN, "runs.status": _DERIVED,
    "runs.mlflow_run_id": _DERIVED, "runs.metadata": _DERIVED,
    "dataset_versions.name": _CHOSEN, "dataset_versions.filter": _CHOSEN,
    "dataset_versions.params": _CHOSEN, "dataset_versions.split_counts": _DERIVED,
    "dataset_versions.path": _CHOSEN, "dataset_versions.md5": _DERIVED,
    "dataset_versions.git_rev": _DERIVED, "dataset_versions.mlflow_run_id": _DERIVED,
    "dataset_versions.created_by": _CHOSEN,
    "sessions.end_user_id": "the key erasure and tombstones work by; an application id",
    "generations.name": "the traced function or call name (code)",
    "generations.params": "model parameters the application sets (temperature, stop)",
    "generations.status": _DERIVED, "generations.origin": _DERIVED,
    "generations.generator": _CHOSEN, "generations.lineage": _CHOSEN,
    "prompt_labels.label": _CHOSEN,
    "attachments.kind": _DERIVED, "attachments.mime_type": _DERIVED,
    "attachments.uri": "a storage location; the bytes are not text", "attachments.role": _DERIVED,
    "dataset_items.split": _DERIVED, "dedup_signatures.scheme": _DERIVED,
    "generation_embeddings.embedder": _DERIVED,
    "generation_search.language": "derived: the tsvector is recomputed when the text changes",
    "pii_findings.field": _DERIVED, "pii_findings.entity_type": _DERIVED,
    "pii_findings.operator": _DERIVED, "pii_findings.detector": _DERIVED,
    "run_datasets.context": _CHOSEN,
    "scores.name": _CHOSEN, "scores.data_type": _DERIVED,
    "scores.value_text": "a categorical label from the application's own vocabulary",
    "scores.source": _DERIVED, "scores.author": _CHOSEN, "vault.key_id": _DERIVED,
    # access (0008) and API keys (0011)
    "projects.owner": _CHOSEN, "principal_logins.principal": _CHOSEN,
    "principal_logins.rolname": _DERIVED, "lake_keys.purpose": _DERIVED,
    "lake_keys.key_id": "a key's fingerprint, never the key", "api_keys.name": _CHOSEN,
    "api_keys.prefix": "the key's public first characters", "api_keys.principal": _CHOSEN,
    "api_keys.role": _DERIVED, "api_keys.created_by": _CHOSEN,
    # experiments (0010)
    "experiments.name": _CHOSEN, "experiments.split": _DERIVED, "experiments.task": _CHOSEN,
    "experiments.params": _CHOSEN, "experiments.status": _DERIVED,
    "experiments.created_by": _CHOSEN, "experiment_items.status": _DERIVED,
    "experiment_items.error": _WRITTEN_CLEAN, "experiment_items.metadata": _WRITTEN_CLEAN,
    # the entity graph (0012): read from generation text the policy already rewrote, and
    # kept out of the graph where the policy removes a value (graph/guard.py)
    "entities.kind": _DERIVED, "entities.source": _DERIVED, "entities.key": _GRAPH,
    "entities.name": _GRAPH, "entities.aliases": _GRAPH, "entity_mentions.surface": _GRAPH,
    "entity_mentions.field": _DERIVED, "entity_mentions.extractor": _DERIVED,
    "entity_mentions.extractor_version": _DERIVED, "entity_extractions.extractor": _DERIVED,
    "entity_extractions.extractor_version": _DERIVED,
    "entity_relations.predicate": _CHOSEN, "entity_relations.source": _DERIVED,
}  # fmt: skip
"""Text-bearing columns the policy does not touch, each with its reason."""

__all__ = ["COVERED", "EXEMPT"]
