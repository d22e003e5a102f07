# Azure: azurerm_linux_virtual_machine machines with a NIC each in a resource group, virtual
# network and subnet of the deployment, everything tagged with the deployment id, the agent
# bootstrap as custom_data.
terraform {
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.0"
    }
  }
}

provider "azurerm" {
  features {}
}

locals {
  vm_sizes = { small = "Standard_B1ms", medium = "Standard_B2s", large = "Standard_B2ms" }
  tags     = { "vaporform-deployment" = var.deployment_id }
}

resource "azurerm_resource_group" "deployment" {
  name     = "vf-${var.deployment_id}"
  location = var.region
  tags     = local.tags
}

resource "azurerm_virtual_network" "deployment" {
  name                = "vf-${var.deployment_id}"
  address_space       = ["10.80.0.0/16"]
  location            = azurerm_resource_group.deployment.location
  resource_group_name = azurerm_resource_group.deployment.name
  tags                = local.tags
}

resource "azurerm_subnet" "machines" {
  name                 = "machines"
  resource_group_name  = azurerm_resource_group.deployment.name
  virtual_network_name = azurerm_virtual_network.deployment.name
  address_prefixes     = ["10.80.1.0/24"]
}

resource "azurerm_public_ip" "machine" {
  count               = var.machine_count
  name                = "vf-${var.deployment_id}-${count.index}"
  location            = azurerm_resource_group.deployment.location
  resource_group_name = azurerm_resource_group.deployment.name
  allocation_method   = "Static"
  tags                = local.tags
}

resource "azurerm_network_interface" "machine" {
  count               = var.machine_count
  name                = "vf-${var.deployment_id}-${count.index}"
  location            = azurerm_resource_group.deployment.location
  resource_group_name = azurerm_resource_group.deployment.name
  tags                = local.tags
  ip_configuration {
    name                          = "primary"
    subnet_id                     = azurerm_subnet.machines.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.machine[count.index].id
  }
}

resource "azurerm_linux_virtual_machine" "machine" {
  count                           = var.machine_count
  name                            = "vf-${var.deployment_id}-${count.index}"
  location                        = azurerm_resource_group.deployment.location
  resource_group_name             = azurerm_resource_group.deployment.name
  size                            = local.vm_sizes[var.size]
  admin_username                  = "vaporform"
  disable_password_authentication = true
  network_interface_ids           = [azurerm_network_interface.machine[count.index].id]
  tags                            = local.tags
  custom_data = base64encode(templatefile("${path.module}/../../bootstrap/agent.sh.tftpl", {
    deployment_id    = var.deployment_id
    bootstrap        = var.bootstrap
    enrollment_token = try(var.agent_tokens[count.index], "")
    server_url       = var.agent_server_url
    agent_url        = "${replace(replace(var.agent_server_url, "wss://", "https://"), "ws://", "http://")}/agent.js"
    agent_sha256     = var.agent_sha256
  }))
  lifecycle {
    # Each run issues new one-use tokens: a running machine keeps the bootstrap it booted with.
    ignore_changes = [custom_data]
  }
  admin_ssh_key {
    username   = "vaporform"
    public_key = var.ssh_public_key
  }
  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Standard_LRS"
  }
  source_image_reference {
    publisher = "Debian"
    offer     = "debian-12"
    sku       = "12-gen2"
    version   = "latest"
  }
}
