# Inputs of the AMI build. Set them with -var NAME=VALUE (see README.md).

variable "region" {
  type        = string
  default     = "us-east-1"
  description = "AWS region the build instance runs in and the AMI is registered in."
}

variable "instance_type" {
  type        = string
  default     = "t3.small"
  description = "Instance type of the temporary build instance."
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet for the build instance; empty = the default VPC's default subnet."
}

variable "associate_public_ip_address" {
  type        = bool
  default     = true
  description = "Give the build instance a public IP (Packer connects over SSH)."
}

variable "volume_size" {
  type        = number
  default     = 16
  description = "Root volume size (GiB) of the image. Kasm's VM provider config sets the size of the agents' volumes."
}

variable "ami_name_prefix" {
  type        = string
  default     = "kasm-bootstrap-agent-ubuntu-22.04"
  description = "AMI name prefix; a UTC timestamp is appended."
}

variable "source_ami_name_filter" {
  type        = string
  default     = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"
  description = "Name filter for Canonical's Ubuntu 22.04 AMIs (owner 099720109477)."
}

variable "deb_file" {
  type        = string
  default     = ""
  description = "kasm-bootstrap .deb to install; empty = build/static/kasm-bootstrap.deb of this checkout (scripts/build-deb.sh)."
}

variable "release_url" {
  type        = string
  description = "HTTPS URL of the Kasm release tarball the agents install (written into the image defaults)."
}

variable "release_sha256" {
  type        = string
  description = "SHA-256 of the release tarball (64 hex digits)."
}

variable "prefetch_release" {
  type        = bool
  default     = true
  description = "Download and verify the release into cache_dir at build time, so agents need no download at boot."
}

variable "cache_dir" {
  type        = string
  default     = "/var/cache/kasm-bootstrap"
  description = "Where kasm-bootstrap keeps verified releases (image default cache_dir)."
}

variable "swap_size" {
  type        = string
  default     = "auto"
  description = "Image default swap policy: auto, off, 0, or a size such as 8G."
}

variable "baked" {
  type        = bool
  default     = false
  description = "Pre-baked fast path: also install Docker, the release and its service images at build time (kasm-bootstrap prebake); instances then take the fast path at boot."
}

variable "service_images" {
  type        = string
  default     = ""
  description = "baked=true only: path ON THE BUILD INSTANCE of Kasm's offline service images tarball, passed to install.sh -s (empty = the installer pulls them)."
}
