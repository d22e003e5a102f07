output "machines" {
  description = "The machines: name, id, private_ip, public_ip."
  value = [
    for m in google_compute_instance.machine : {
      name       = m.name
      id         = m.instance_id
      private_ip = m.network_interface[0].network_ip
      public_ip  = m.network_interface[0].access_config[0].nat_ip
    }
  ]
}
