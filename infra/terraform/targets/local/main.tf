# Machines on this host: hardened Docker containers on a network of their own per deployment,
# through the Vaporform provider (infra/terraform/provider-local, installed with -plugin-dir).
terraform {
  required_providers {
    vaporform = {
      source  = "vaporform.local/infra/vaporform"
      version = "0.1.0"
    }
  }
}

resource "vaporform_machine" "machine" {
  count         = var.machine_count
  name          = "vf-${var.deployment_id}-${count.index}"
  deployment_id = var.deployment_id
  image         = var.image
  memory_mb     = local.memory_by_size[var.size]
}
