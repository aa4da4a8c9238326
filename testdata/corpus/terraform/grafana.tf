provider "grafana" {
  url  = "https://acme.grafana.net/"
  auth = "glsa_NYeS4JsOKpZrC2OHlFpMnXj3Nniicqvg_b1a95f02"
}

provider "grafana" {
  alias                     = "cloud"
  cloud_access_policy_token = "glc_eyJvIjoiODExOTE4IiwibiI6InN0YWNrLTM0Njc4OC1obS1yZWFkLWRlcGxveSIsImsiOiJva0MyYzVZSGltcnd4TWVUVktKaEdvV2wiLCJtIjp7InIiOiJwcm9kLWV1LXdlc3QtMiJ9fQ=="
}

resource "grafana_folder" "slo" {
  title = "SLOs"
}
