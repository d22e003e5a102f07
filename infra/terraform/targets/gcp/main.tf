# Google Cloud: google_compute_instance machines, labelled with the deployment id, the agent
# bootstrap as the startup script.
terraform {
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }
}

provider "google" {
  region = var.region
}

locals {
  machine_types = { small = "e2-small", medium = "e2-medium", large = "e2-standard-2" }
}

resource "google_compute_instance" "machine" {
  count        = var.machine_count
  name         = "vf-${var.deployment_id}-${count.index}"
  machine_type = local.machine_types[var.size]
  zone         = "${var.region}-a"
  labels       = { "vaporform-deployment" = var.deployment_id }
  boot_disk {
    initialize_params {
      image = var.image != "" ? var.image : "debian-cloud/debian-12"
    }
  }
  network_interface {
    network = "default"
    access_config {}
  }
  metadata_startup_script = templatefile("${path.module}/../../bootstrap/agent.sh.tftpl", {
    deployment_id    = var.deployment_id
    bootstrap        = var.bootstrap
    enrollment_token = try(var.agent_tokens[count.index], "")
    server_url       = var.agent_server_url
    agent_url        = "${replace(replace(var.agent_server_url, "wss://", "https://"), "ws://", "http://")}/agent.js"
    agent_sha256     = var.agent_sha256
  })
  lifecycle {
    # Each run issues new one-use tokens: a running machine keeps the bootstrap it booted with.
    ignore_changes = [metadata_startup_script]
  }
  shielded_instance_config {
    enable_secure_boot = true
  }
}
