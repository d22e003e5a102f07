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
  description = "Agent bootstrap script (run by the agent issue; unused until then)."
  type        = string
  default     = ""
}

locals {
  memory_by_size = { small = 512, medium = 1024, large = 2048 }
}
