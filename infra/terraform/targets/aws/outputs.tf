output "machines" {
  description = "The machines: name, id, private_ip, public_ip."
  value = [
    for m in aws_instance.machine : {
      name       = m.tags["Name"]
      id         = m.id
      private_ip = m.private_ip
      public_ip  = m.public_ip
    }
  ]
}
