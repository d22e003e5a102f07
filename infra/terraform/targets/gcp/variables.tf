variable "deployment_id" {
  description = "Vaporform deployment id: names and tags every resource."
  type        = string
}

variable "machine_count" {
  description = "How many machines."
  type        = number
  default     = 1
}

variable "size" {
  description = "Machine size: small, medium or large."
  type        = string
  default     = "small"
}

variable "region" {
  description = "Where the machines run."
  type        = string
}

variable "image" {
  description = "Machine image (empty: the target's default Debian image)."
  type        = string
  default     = ""
}

variable "bootstrap" {
  description = "Agent bootstrap script, run once at first boot."
  type        = string
  default     = ""
}
