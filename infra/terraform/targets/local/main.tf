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

  # The agent: the bootstrap runs it (and again whenever it exits); the token is this machine's.
  bootstrap        = var.agent_server_url == "" ? "" : var.bootstrap
  agent_server_url = var.agent_server_url
  agent_socket_dir = var.agent_socket_dir
  agent_token      = try(var.agent_tokens[count.index], "")

  lifecycle {
    # A token is only for the machine's first boot: later runs issue new ones, machines stay.
    ignore_changes = [agent_token, bootstrap, agent_server_url, agent_socket_dir]
  }
}
