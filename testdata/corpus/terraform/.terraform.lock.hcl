# This file is maintained automatically by "terraform init".
# Manual edits may be lost in future updates.

provider "registry.terraform.io/datadog/datadog" {
  version = "3.42.0"
  hashes = [
    "h1:ivegiWP/WD8W4U3Jk/IXb4oz75p6OtnwSXKtFcMmt6s=",
    "zh:848790e70e54209e77505d48e22bfe1dd4eb52dac132f3b0683ed0150a652b13",
    "zh:ab4eb689f82962567bb3b85f13eb4fc54d6ea2b49dc88d9933c90a5b763a8875",
    "zh:8c48bbdebfa048e5141dde0400fb692bf760dadd5b53e7d5adbe4b039ff65bc6",
  ]
}

provider "registry.terraform.io/hashicorp/aws" {
  version     = "5.60.0"
  constraints = "~> 5.60"
  hashes = [
    "h1:U2HpLGrghBOF4VvmOX/IRGg6dXHS4XiyV8QjV2vGjyM=",
    "zh:5aaeb6a98b79795c5b707725c98a4414e07928a3eeadaa35c8250f59182a7d9e",
    "zh:6e792a9e6adaca2f6b175a756c72ed3b9262b337ceab25a948be62a247fcae0d",
    "zh:5455d109eb62baf8318bd1b3b34ff97fee15ace18b4092fcd6ba6ba0c7a10f3f",
    "zh:3143394042bf1a1d1a21a48d7dd64ab424506a8eb75e8ce75be5d45a3624df23",
  ]
}
