output "machines" {
  description = "The machines: name, id, private_ip, public_ip."
  value = [
    for m in vaporform_machine.machine : {
      name       = m.name
      id         = m.id
      private_ip = m.private_ip
      public_ip  = ""
    }
  ]
}
