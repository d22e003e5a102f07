# AWS: aws_instance machines in the default VPC behind a security group of their own, every
# resource tagged with the deployment id, the agent bootstrap as user_data.
terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { "vaporform-deployment" = var.deployment_id }
  }
}

locals {
  instance_types = { small = "t3.small", medium = "t3.medium", large = "t3.large" }
}

data "aws_ami" "debian" {
  most_recent = true
  owners      = ["136693071363"]
  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }
}

resource "aws_security_group" "machines" {
  name        = "vf-${var.deployment_id}"
  description = "Vaporform deployment ${var.deployment_id}: outbound only (the agent dials out)"
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "machine" {
  count                  = var.machine_count
  ami                    = var.image != "" ? var.image : data.aws_ami.debian.id
  instance_type          = local.instance_types[var.size]
  vpc_security_group_ids = [aws_security_group.machines.id]
  user_data = templatefile("${path.module}/../../bootstrap/agent.sh.tftpl", {
    deployment_id    = var.deployment_id
    bootstrap        = var.bootstrap
    enrollment_token = try(var.agent_tokens[count.index], "")
    server_url       = var.agent_server_url
    agent_url        = "${replace(replace(var.agent_server_url, "wss://", "https://"), "ws://", "http://")}/agent.js"
    agent_sha256     = var.agent_sha256
  })
  lifecycle {
    # Each run issues new one-use tokens: a running machine keeps the bootstrap it booted with.
    ignore_changes = [user_data]
  }
  metadata_options {
    http_tokens = "required"
  }
  tags = { Name = "vf-${var.deployment_id}-${count.index}" }
}
