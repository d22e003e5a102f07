variable "deployment_id" {
  description = "Vaporform deployment id: names the machines and labels them (vaporform.deployment)."
  type        = string
}

variable "machine_count" {
  description = "How many machines."
  type        = number
  default     = 1
}

variable "size" {
  description = "Machine size: small (512 MiB), medium (1 GiB) or large (2 GiB)."
  type        = string
  default     = "small"
}

variable "region" {
  description = "Unused for local machines (this host)."
  type        = string
  default     = "local"
}

variable "image" {
  description = "Container image of the machines."
  type        = string
  default     = "vaporform/runtime:node"
}

variable "bootstrap" {
  description = "Agent bootstrap: the machine's main process (installs and keeps running the agent)."
  type        = string
  default     = ""
}

locals {
  memory_by_size = { small = 512, medium = 1024, large = 2048 }
}

variable "agent_tokens" {
  description = "One-use enrollment token per machine (index = count.index), from the agent service."
  type        = list(string)
  default     = []
  sensitive   = true
}

variable "agent_server_url" {
  description = "Where the agent dials (the local gateway socket, ws+unix://…); empty: no agent."
  type        = string
  default     = ""
}

variable "agent_socket_dir" {
  description = "Host folder of the server's agent gateway socket, mounted at /run/vaporform."
  type        = string
  default     = ""
}

variable "agent_sha256" {
  description = "sha256 of the agent bundle the server serves (informational for local machines)."
  type        = string
  default     = ""
}
