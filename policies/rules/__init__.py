"""All rules of the pack, one module each (see ``policies/lib/rule.py`` for the contract)."""

from __future__ import annotations

from types import ModuleType

from . import (
    authorization_policy_no_allow_all,
    automount_sa_token,
    default_deny_authorization_policy,
    default_deny_network_policy,
    ha_postgres,
    ha_redis,
    image_provenance,
    istio_destination_rule_tls,
    istio_gateway_tls,
    istio_peer_authentication,
    istio_sidecar_bypass,
    istio_virtualservice_routing,
    istio_virtualservice_subsets,
    kubernetes_checkov,
    kubernetes_checkov_advisory,
    network_policy_no_allow_all,
    no_plaintext_secrets,
    pdb_for_deployments,
    pod_security,
    prod_replicas,
    random_password_strength,
    rbac_no_cluster_admin_sa,
    rbac_no_wildcards,
    resource_budget,
    rollout_phase_step,
    vault_audit_device,
    vault_k8s_auth_ttl,
    vault_policy_least_privilege,
)

ALL: tuple[ModuleType, ...] = (
    pod_security,
    image_provenance,
    resource_budget,
    istio_peer_authentication,
    istio_destination_rule_tls,
    istio_gateway_tls,
    istio_virtualservice_routing,
    istio_virtualservice_subsets,
    istio_sidecar_bypass,
    rollout_phase_step,
    default_deny_network_policy,
    default_deny_authorization_policy,
    network_policy_no_allow_all,
    authorization_policy_no_allow_all,
    rbac_no_wildcards,
    rbac_no_cluster_admin_sa,
    automount_sa_token,
    no_plaintext_secrets,
    ha_postgres,
    ha_redis,
    pdb_for_deployments,
    prod_replicas,
    vault_audit_device,
    vault_policy_least_privilege,
    vault_k8s_auth_ttl,
    random_password_strength,
    kubernetes_checkov,
    kubernetes_checkov_advisory,
)

BY_NAME: dict[str, ModuleType] = {m.RULE.name: m for m in ALL}
