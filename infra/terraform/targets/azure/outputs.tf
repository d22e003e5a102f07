output "machines" {
  description = "The machines: name, id, private_ip, public_ip."
  value = [
    for i, m in azurerm_linux_virtual_machine.machine : {
      name       = m.name
      id         = m.id
      private_ip = azurerm_network_interface.machine[i].private_ip_address
      public_ip  = azurerm_public_ip.machine[i].ip_address
    }
  ]
}
