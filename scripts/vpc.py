"""The VPC endpoints a stage's functions need when they run in subnets with no way out, as
CloudFormation resources merged into the packaged template by ``scripts/render_config.py``.

In a VPC a Lambda function has no public address: unless its subnets route to a NAT gateway, it
reaches AWS services only through VPC endpoints. The functions call two services:

* **DynamoDB** (every record, state and lease): a *gateway* endpoint, free, added as a route to
  the subnets' route tables (``--route-table-ids``);
* **SSM** (the notify and API tokens): an *interface* endpoint in the functions' subnets, with
  private DNS (the VPC needs DNS support and DNS hostnames on) and a security group of its own
  that lets HTTPS (443) in from the functions' security groups.

CloudWatch Logs and the metrics (EMF log lines) leave through Lambda itself, and SSM decrypts a
SecureString with KMS on its own side: no other endpoint is needed. Neither endpoint carries a
policy: a gateway endpoint serves every workload of those route tables, and a private-DNS
interface endpoint every workload of the VPC.
"""

from __future__ import annotations

from typing import Any

ENDPOINTS = ("dynamodb", "ssm")  # what --endpoints may name, besides "none"
DYNAMODB = "DynamoDbEndpoint"
SSM = "SsmEndpoint"
SSM_GROUP = "SsmEndpointSecurityGroup"


def resources(stage: str, endpoints: list[str], vpc_id: str, subnet_ids: list[str],
              security_group_ids: list[str], route_table_ids: list[str]) -> dict[str, Any]:
    """The endpoints named in ``endpoints`` (a subset of :data:`ENDPOINTS`) and what they need."""
    out: dict[str, Any] = {}
    if "dynamodb" in endpoints:
        out[DYNAMODB] = {"Type": "AWS::EC2::VPCEndpoint", "Properties": {
            "VpcId": vpc_id, "VpcEndpointType": "Gateway",
            "ServiceName": {"Fn::Sub": "com.amazonaws.${AWS::Region}.dynamodb"},
            "RouteTableIds": route_table_ids}}
    if "ssm" in endpoints:
        out[SSM_GROUP] = {"Type": "AWS::EC2::SecurityGroup", "Properties": {
            "GroupDescription": f"backupctl {stage}: HTTPS from the functions to the SSM endpoint",
            "VpcId": vpc_id,
            "SecurityGroupIngress": [
                {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "SourceSecurityGroupId": group,
                 "Description": "the backupctl functions"} for group in security_group_ids]}}
        out[SSM] = {"Type": "AWS::EC2::VPCEndpoint", "Properties": {
            "VpcId": vpc_id, "VpcEndpointType": "Interface",
            "ServiceName": {"Fn::Sub": "com.amazonaws.${AWS::Region}.ssm"},
            "PrivateDnsEnabled": True, "SubnetIds": subnet_ids,
            "SecurityGroupIds": [{"Ref": SSM_GROUP}]}}
    return out
