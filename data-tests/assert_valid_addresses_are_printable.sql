-- A valid address has everything a mail house prints; an invalid one says which field failed and why.
with

addresses as (

    select * from {{ ref('int_profiles_addressed') }}

)

select *
from addresses
where
    (
        is_valid_address
        and (
            normalized_address_line_1 is null
            or normalized_postal_code is null
            or normalized_city is null
            or normalized_country_code is null
            or household_key is null
            or address_errors is not null
        )
    )
    or (not is_valid_address and address_errors is null)
