variable "db_password" {
  description = "Master password for the orders database"
  type        = string
  sensitive   = true
}

variable "datadog_api_key" {
  type      = string
  sensitive = true
}

variable "datadog_app_key" {
  type      = string
  sensitive = true
}

variable "grafana_admin_password" {
  type        = string
  sensitive   = true
  description = "initial admin password; rotate after first login"
  default     = "Graf4na-Init!Adm#77"
}

variable "api_key_header" {
  type    = string
  default = "X-Api-Key"
}

variable "token_ttl_seconds" {
  type    = number
  default = 900
}
