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

variable "agent_tokens" {
  description = "One-use enrollment token per machine (index = count.index), from the agent service."
  type        = list(string)
  default     = []
  sensitive   = true
}

variable "agent_server_url" {
  description = "Where the agent dials: wss://<server>/api/agent."
  type        = string
  default     = ""
}

variable "agent_sha256" {
  description = "sha256 of the agent bundle served at <server>/api/agent/agent.js."
  type        = string
  default     = ""
}
