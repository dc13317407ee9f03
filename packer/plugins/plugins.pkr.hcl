# Plugin requirements for Packer 1.7 and later (`packer init packer/plugins`).
#
# Kept in its own directory on purpose: `packer validate packer/` and `packer build
# packer/` load only the *.pkr.hcl files directly in packer/, and Debian's packer 1.6.6
# (which has the amazon-ebs builder built in) rejects a required_plugins block. Packer
# 1.7+ finds the plugin `packer init` installed without this block being in packer/.
packer {
  required_version = ">= 1.7.0"
  required_plugins {
    amazon = {
      version = ">= 1.2.0"
      source  = "github.com/hashicorp/amazon"
    }
  }
}
